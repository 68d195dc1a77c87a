"""The caption list: one row per utterance, in index order, pending until its answer comes.
Plain data; the app renders it."""

from __future__ import annotations

from dataclasses import dataclass, field

from lingua_protocol import Error, Message, MissingResult, RoomError, TranslationResult


@dataclass
class Row:
    index: int
    speaker: str = "me"
    source: str = ""
    translation: str = ""
    state: str = "pending"  # pending | done | empty | error | missing
    latency_ms: float | None = None
    node: str | None = None


@dataclass
class Captions:
    rows: dict[int, Row] = field(default_factory=dict)
    room_rows: list[Row] = field(default_factory=list)  # what others said in a room

    def pending(self, index: int) -> Row:
        row = self.rows.setdefault(index, Row(index))
        return row

    def apply(self, message: Message, latency_ms: float | None = None) -> Row | None:
        if isinstance(message, TranslationResult):
            if message.speaker_session_id and message.speaker_session_id != message.session_id:
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

    def ordered(self) -> list[Row]:
        return [self.rows[i] for i in sorted(self.rows)]

    def transcript(self) -> str:
        lines = []
        for row in self.ordered():
            lines.append(f"[{row.index}] {row.source}\n    -> {row.translation}")
        for row in self.room_rows:
            lines.append(f"({row.speaker}) {row.source}\n    -> {row.translation}")
        return "\n".join(lines) + "\n"
