"""Which protocol versions the core accepts from a peer."""

from __future__ import annotations

from lingua_protocol import SUPPORTED_PROTOCOL_MAJORS


def version_ok(version: str | None) -> bool:
    """A peer that states no version speaks ours; otherwise its major must be supported."""
    return version is None or version.split(".")[0] in SUPPORTED_PROTOCOL_MAJORS
