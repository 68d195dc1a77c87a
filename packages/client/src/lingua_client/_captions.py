"""The caption list: one row per utterance, in index order, pending until its answer comes.
Plain data; the app renders it.

While an utterance is streamed its row is the *live line*: the newest `asr_partial`'s
committed words (`stable`) and the guess after them (`tail`); its final answer replaces both.
A room member's live line is kept by (speaker, index) until their final result arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lingua_protocol import (
    AsrPartial,
    Error,
    Message,
    MissingResult,
    RoomError,
    TranslationResult,
)


@dataclass
class Row:
    index: int
    speaker: str = "me"
    source: str = ""
    translation: str = ""
    state: str = "pending"  # pending | done | empty | error | missing
    latency_ms: float | None = None
    node: str | None = None
    stable: str = ""
    """Live line: the words the recogniser has committed (pending rows only)."""
    tail: str = ""
    """Live line: the words after them, still a guess."""

    @property
    def live(self) -> bool:
        return self.state == "pending" and bool(self.stable or self.tail)


def split_partial(p: AsrPartial) -> tuple[str, str]:
    """(committed, guess) of a partial; the guess is what `text` adds after `stable_text`
    (all of `text` when a node sends a stable prefix that is not one)."""
    stable = p.stable_text
    if p.text.startswith(stable):
        return stable, p.text[len(stable) :]
    return "", p.text


MAX_ROOM_LIVE = 32
"""Room members' live lines kept at once (one per speaker talking is the usual case)."""


@dataclass
class Captions:
    rows: dict[int, Row] = field(default_factory=dict)
    room_rows: list[Row] = field(default_factory=list)  # what others said in a room
    room_live: dict[tuple[str, int], Row] = field(default_factory=dict)
    """Room members' utterances still being spoken, by (speaker session, their index)."""

    def pending(self, index: int) -> Row:
        row = self.rows.setdefault(index, Row(index))
        return row

    def apply(self, message: Message, latency_ms: float | None = None) -> Row | None:
        if isinstance(message, AsrPartial):
            return self._partial(message)
        if isinstance(message, TranslationResult):
            if message.speaker_session_id and message.speaker_session_id != message.session_id:
                self.room_live.pop((message.speaker_session_id, message.utterance_index), None)
                row = Row(
                    message.utterance_index,
                    speaker=message.speaker_display_name or "?",
                    source=message.text_asr or "",
                    translation=message.text_translated or "",
                    state="done",
                    node=message.node_id,
                )
                self.room_rows.append(row)
                return row
            row = self.pending(message.utterance_index)
            row.source = message.text_asr or ""
            row.translation = message.text_translated or ""
            empty = message.extra is not None and message.extra.reason == "ASR_EMPTY"
            row.state = "empty" if empty else "done"
            row.latency_ms = latency_ms
            row.node = message.node_id
            return row
        if isinstance(message, RoomError):  # another member's words failed for us: their row
            self.room_live.pop((message.speaker_session_id, message.utterance_index), None)
            row = Row(
                message.utterance_index,
                speaker=message.speaker_display_name or "?",
                translation=f"{message.code}: {message.message}",
                state="error",
            )
            self.room_rows.append(row)
            return row
        if isinstance(message, MissingResult):
            row = self.pending(message.utterance_index)
            row.state, row.translation = "missing", f"(no result: {message.reason})"
            return row
        if isinstance(message, Error) and message.utterance_index is not None:
            row = self.pending(message.utterance_index)
            row.state, row.translation = "error", f"{message.code}: {message.message}"
            return row
        return None

    def _partial(self, p: AsrPartial) -> Row | None:
        """The session core passes on only our newest partial of a pending index; a room
        member's are shown as they come (the scheduler sends only the newest)."""
        stable, tail = split_partial(p)
        if p.speaker_session_id and p.speaker_session_id != p.session_id:
            key = (p.speaker_session_id, p.utterance_index)
            row = self.room_live.get(key)
            if row is None:
                if len(self.room_live) >= MAX_ROOM_LIVE:
                    return None  # a bound on other speakers' lines; their finals still come
                row = Row(p.utterance_index, speaker=p.speaker_display_name or "?")
                self.room_live[key] = row
        else:
            row = self.rows.get(p.utterance_index)
            if row is None or row.state != "pending":
                return None
        row.stable, row.tail = stable, tail
        return row

    def ordered(self) -> list[Row]:
        return [self.rows[i] for i in sorted(self.rows)]

    def transcript(self) -> str:
        lines = []
        for row in self.ordered():
            lines.append(f"[{row.index}] {row.source}\n    -> {row.translation}")
        for row in self.room_rows:
            lines.append(f"({row.speaker}) {row.source}\n    -> {row.translation}")
        return "\n".join(lines) + "\n"
