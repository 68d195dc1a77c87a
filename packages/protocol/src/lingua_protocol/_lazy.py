"""Public names a package re-exports without importing them at import time (PEP 562).

The node's, client's and scheduler's public APIs include names whose modules load large or
optional libraries (faster-whisper, Textual, redis-py): importing the package itself must stay
cheap, so each such name is imported on first use. Kept here because every package needs the
same few lines and the protocol package is the one they all import.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, table: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `table` maps a public name to the (relative)
    module that defines it; the value is imported on first use and then kept in the
    package, so later lookups are ordinary attribute reads."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
