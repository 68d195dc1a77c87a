"""The shell's outbox keeps only the newest partial per utterance for a peer that does not
read, in the place of the first one, so it never overtakes a final result. Driven through the
shell's own `_apply` and writer task with a stand-in socket whose buffer is full (no network,
no sleeping)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from lingua_protocol import AsrPartial, TranslationResult, parse_server_message
from lingua_scheduler._core.actions import Send, SendLatest
from lingua_scheduler._server import Peer, SchedulerServer
from lingua_scheduler._settings import SchedulerSettings
from websockets.protocol import State


class _FullSocket:
    """A connection whose socket buffer is full: every message waits in the outbox until the
    test lets the writer task send it (then recorded here)."""

    def __init__(self) -> None:
        self.protocol = SimpleNamespace(state=State.OPEN)
        self.transport = SimpleNamespace(get_write_buffer_size=lambda: 1 << 30)
        self.sent: list[Any] = []

    async def send(self, data: bytes, text: bool = True) -> None:
        self.sent.append(parse_server_message(data))


def _partial(index: int, revision: int) -> AsrPartial:
    return AsrPartial(session_id="s", utterance_index=index, text=f"t{revision}", revision=revision)


def _final(index: int) -> TranslationResult:
    return TranslationResult(session_id="s", utterance_index=index, text_asr="done")


async def test_a_slow_reader_gets_only_the_newest_partial_per_utterance_in_order() -> None:
    server = SchedulerServer(SchedulerSettings(port=0))
    ws = _FullSocket()
    peer = Peer(conn_id="c", ws=ws, kind="session")  # type: ignore[arg-type]
    server.peers["c"] = peer
    server._apply(
        [
            SendLatest("c", _partial(0, 1), ("s", 0)),
            SendLatest("c", _partial(1, 1), ("s", 1)),
            SendLatest("c", _partial(0, 2), ("s", 0)),
            Send("c", _final(0)),
            SendLatest("c", _partial(1, 2), ("s", 1)),
            SendLatest("c", _partial(0, 3), ("s", 0)),  # the core sends none after a final
        ]
    )
    assert peer.outbox.qsize() == 3
    assert server.metrics.partials_coalesced == 3
    queued = sum(
        len(i.frame.data) if hasattr(i, "frame") else len(i.data) for i in peer.outbox._queue
    )  # type: ignore[attr-defined]
    assert peer.outbox_bytes == queued
    peer.outbox.put_nowait((0, ""))  # the writer stops after what is queued
    await asyncio.wait_for(server._write_loop(peer), 5.0)
    got = [(m.type, m.utterance_index, getattr(m, "revision", None)) for m in ws.sent]
    assert got == [
        ("asr_partial", 0, 3),
        ("asr_partial", 1, 2),
        ("translation_result", 0, None),
    ]
    assert peer.latest == {}
    assert peer.outbox_bytes == 0
    if server._timer is not None:
        server._timer.cancel()


async def test_a_partial_after_its_slot_was_taken_by_the_writer_queues_behind() -> None:
    server = SchedulerServer(SchedulerSettings(port=0))
    ws = _FullSocket()
    peer = Peer(conn_id="c", ws=ws, kind="session")  # type: ignore[arg-type]
    server.peers["c"] = peer
    server._apply([SendLatest("c", _partial(0, 1), ("s", 0)), Send("c", _final(1))])
    sent_first = asyncio.Event()
    real_send = ws.send

    async def send_then_queue_newer(data: bytes, text: bool = True) -> None:
        await real_send(data, text)
        if not sent_first.is_set():
            sent_first.set()
            server._apply([SendLatest("c", _partial(0, 2), ("s", 0))])
            peer.outbox.put_nowait((0, ""))

    ws.send = send_then_queue_newer  # type: ignore[method-assign]
    await asyncio.wait_for(server._write_loop(peer), 5.0)
    got = [(m.type, m.utterance_index, getattr(m, "revision", None)) for m in ws.sent]
    assert got == [
        ("asr_partial", 0, 1),
        ("translation_result", 1, None),
        ("asr_partial", 0, 2),
    ]
    if server._timer is not None:
        server._timer.cancel()
