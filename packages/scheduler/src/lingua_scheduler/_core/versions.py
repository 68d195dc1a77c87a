"""Which protocol versions the core accepts from a peer."""

from __future__ import annotations

from lingua_protocol import PROTOCOL_VERSION, SUPPORTED_PROTOCOL_MAJORS, ErrorCode

from .actions import Action, refuse_and_close


def version_ok(version: str | None) -> bool:
    """A peer that states no version speaks ours; otherwise its major must be supported."""
    return version is None or version.split(".")[0] in SUPPORTED_PROTOCOL_MAJORS


def version_refusal(conn_id: str, version: str | None) -> list[Action]:
    """The answer to a peer whose protocol this scheduler does not speak: say so, and close
    (nothing else it sends could be understood)."""
    text = f"protocol {version} not supported; this scheduler speaks {PROTOCOL_VERSION}"
    return refuse_and_close(
        conn_id,
        ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
        text,
        "protocol_version",
        "unsupported protocol version",
    )
