"""Keep everything but the app off the terminal while the Textual app runs.

C libraries (ALSA's "underrun occurred", PortAudio, onnxruntime) write straight to file
descriptor 2, below Python's `sys.stderr`, and their lines would be painted over the app.
While the app runs, descriptor 2 is pointed at the log file; the app itself draws on a
duplicate of the original terminal descriptor (Textual draws on `sys.__stderr__`). Python's
log lines go to the same file, and warnings also to the app's notice line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def stderr_to_file(path: str | Path, level: str = "WARNING") -> Iterator[None]:
    """Point fd 2 and the `lingua` loggers at `path` for the duration; restore both after."""
    sys.stderr.flush()
    log_file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed below
    saved_fd = os.dup(2)
    terminal = os.fdopen(os.dup(saved_fd), "w", encoding="utf-8", buffering=1)
    original = sys.__stderr__
    handler = logging.StreamHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    os.dup2(log_file.fileno(), 2)
    sys.__stderr__ = terminal  # type: ignore[misc]  # Textual draws the screen here
    sys.stderr = log_file
    try:
        yield
    finally:
        sys.stderr = original if original is not None else sys.stderr
        sys.__stderr__ = original  # type: ignore[misc]
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        root.removeHandler(handler)
        terminal.close()
        log_file.close()
