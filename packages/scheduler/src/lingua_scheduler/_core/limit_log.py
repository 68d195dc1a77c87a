"""One log line per limit condition per interval, however often the limit is hit.

A flood (a thousand refused connections a second, `accept()` failing while file descriptors
run out) would otherwise write a line, or a traceback, per event: the log becomes the
attack's amplifier. `LimitLog.hit()` logs the first event of an interval and counts the rest
into the next line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class LimitLog:
    logger: logging.Logger
    interval_s: float
    clock: Callable[[], float]
    _last: dict[str, float] = field(default_factory=dict)
    _suppressed: dict[str, int] = field(default_factory=dict)

    def hit(self, condition: str, detail: str = "", now: float | None = None) -> bool:
        """Count one event of `condition`; log it when none was logged within the interval.
        True when this call wrote a line. `now` defaults to the clock (the core passes its
        event's time). Conditions are a fixed set of strings, so the counts stay bounded."""
        now = self.clock() if now is None else now
        last = self._last.get(condition)
        if last is not None and now - last < self.interval_s:
            self._suppressed[condition] = self._suppressed.get(condition, 0) + 1
            return False
        self._last[condition] = now
        more = self._suppressed.pop(condition, 0)
        tail = f" ({more} more since the last line)" if more else ""
        self.logger.warning("limit: %s%s%s", condition, f": {detail}" if detail else "", tail)
        return True
