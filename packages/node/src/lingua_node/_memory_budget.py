"""The operator's memory budget for loaded models (`LINGUA_NODE_MODEL_MEMORY_BUDGET_MB`).

A volunteer lends a machine, not all of its memory. Every model the node loads is counted at
the size of its files (CTranslate2 and ONNX weights take about that much memory once loaded;
a transformers model in float32 too), the embedded defaults first, since the node cannot
serve without them. A hub model that would take the total over the budget is not loaded, with
one log line naming it, its size and the budget, and is reported as withheld. Within a kind,
the loader offers the smaller models first, so it is the larger ones that are skipped. No
budget (the default): everything installed is loaded.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("lingua.node.memory")

MB = 1_000_000


class MemoryBudget:
    def __init__(self, limit_bytes: int | None) -> None:
        self.limit_bytes = limit_bytes
        self.used_bytes = 0
        self._lock = threading.Lock()

    def count(self, size_bytes: int) -> None:
        """A model that is loaded whatever the budget (an embedded default, or one already
        loaded and kept across a reload)."""
        with self._lock:
            self.used_bytes += size_bytes

    def release(self, size_bytes: int) -> None:
        """An admitted model that then failed to load: its room is free again."""
        with self._lock:
            self.used_bytes = max(0, self.used_bytes - size_bytes)

    def admit(self, kind: str, model_id: str, size_bytes: int) -> str | None:
        """None when the model fits (and is counted); else why it is skipped."""
        with self._lock:
            if self.limit_bytes is None or self.used_bytes + size_bytes <= self.limit_bytes:
                self.used_bytes += size_bytes
                return None
            why = (
                f"skipped: {size_bytes / MB:.0f} MB would take the loaded models to "
                f"{(self.used_bytes + size_bytes) / MB:.0f} MB, over the memory budget of "
                f"{self.limit_bytes / MB:.0f} MB (LINGUA_NODE_MODEL_MEMORY_BUDGET_MB)"
            )
        log.warning("%s model %s %s", kind, model_id, why)
        return why
