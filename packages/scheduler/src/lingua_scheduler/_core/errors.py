"""The scheduler core's one exception type.

A rule inside the core that refuses an event raises `CoreError` with the protocol's
`ErrorCode`; the core's entry points (`SchedulerCore.client_message` / `node_message`) turn
it into exactly one `error` to the connection that sent the event. Raise it only before any
state has changed (validate, then mutate): the entry point does not undo anything.
"""

from __future__ import annotations

from lingua_protocol import Error, ErrorCode, error_message


class CoreError(Exception):
    """A refusal: `code` and `message` for the peer, `field` naming what to fix, and the
    `utterance_index` it answers (so a client can match it to its utterance)."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        *,
        field: str | None = None,
        utterance_index: int | None = None,
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message or code.meaning
        self.field = field
        self.utterance_index = utterance_index

    def to_message(self) -> Error:
        """The `error` this refusal becomes on the wire."""
        return error_message(
            self.code, self.message, field=self.field, utterance_index=self.utterance_index
        )
