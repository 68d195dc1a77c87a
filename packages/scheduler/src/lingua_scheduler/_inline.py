"""A server connection whose messages the scheduler can take in the callback that reads them.

websockets hands each message to its reader through a queue: the frame is put in the
connection's queue, the reader task's future is resolved, and the task runs in a later turn
of the event loop, where `recv()` joins the frame's payload into a new buffer (a copy of
128 KB for a 3 s utterance). At one utterance per second per speaker the scheduler's core is
idle between messages, so each of those steps runs on cold caches: taking a message directly
in `process_event` cut the scheduler's CPU per utterance by about a fifth in the paced bench
(`bench/bench_scheduler.py`, docs/scheduler.md "Benchmark").

The read loop stays in charge of everything unusual, and of order: it sets `take` only while
it waits for the next message with nothing queued, and clears it while it holds one, so a
message is taken inline only when no earlier message of that peer is still waiting. `take`
answers False for a message it leaves to the loop (it is then queued as usual), and clears
itself when the peer must be read by the loop for a while (a costly parse, a spent parse
budget).

`process_event` is the hook websockets' own server connection overrides; whether a message is
still queued is read from `recv_messages.frames` (the same in websockets 14 to 17, the range
`pyproject.toml` allows).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.http11 import Request

log = logging.getLogger("lingua.scheduler.server")

Take = Callable[[bytes], bool]
"""Handle one whole message now: True, or False to leave it to the read loop."""

CLOSE_INTERNAL = 1011


class InlineConnection(ServerConnection):
    """`ServerConnection` with an optional `take` for whole data frames (see the module)."""

    take: Take | None = None

    def process_event(self, event: Request | Frame) -> None:  # type: ignore[override]
        take = self.take
        if (
            take is None
            or not isinstance(event, Frame)
            or not event.fin
            or (event.opcode is not Opcode.TEXT and event.opcode is not Opcode.BINARY)
            or len(self.recv_messages.frames)  # an earlier message still waits for the loop
        ):
            super().process_event(event)
            return
        data = event.data if isinstance(event.data, bytes) else bytes(event.data)
        try:
            if take(data):
                return
        except Exception:  # a bug must not reach websockets' reader: this peer goes
            log.exception("handling a message inline failed")
            self.take = None
            self.protocol.fail(CLOSE_INTERNAL, "internal error")
            self.send_data()
            return
        self.take = None
        super().process_event(event)
