"""How one streamed utterance's audio becomes `audio_chunk`s: pure slicing, no state of its own.

The session core (`session.py`) owns the utterance; this module only decides which bytes go in
which chunk. Why these sizes:

- a non-final chunk goes once at least `min_chunk_bytes` are waiting (default 100 ms of 16 kHz
  pcm16, 3,200 bytes): the microphone delivers 32 ms blocks, and a frame per block would
  triple the messages for no earlier partial (the scheduler asks nodes for partials every few
  hundred milliseconds);
- no chunk carries more than `max_chunk_bytes` (default 1 s, 32,000 bytes): a stream that
  waited (for the connection or the window) has piled up audio, and one huge frame would sit
  in front of every other message of the session;
- once sent, a chunk's bytes are fixed (`Outgoing.chunk_ends`): a resend after a resume
  repeats the same seqs with the same bytes, so a scheduler that drops a seq it already holds
  loses nothing;
- the chunk that closes the utterance (`is_final`) goes as soon as the speaker has stopped,
  with whatever is left, possibly nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MIN_CHUNK_BYTES = 3_200
DEFAULT_MAX_CHUNK_BYTES = 32_000


@dataclass(frozen=True, slots=True)
class ChunkSlice:
    """One chunk to send: `audio[start:end]` of the utterance, with its `seq`."""

    seq: int
    start: int
    end: int
    is_final: bool


def next_slices(
    *,
    total_bytes: int,
    sent_bytes: int,
    next_seq: int,
    closed: bool,
    final_sent: bool,
    min_chunk_bytes: int = DEFAULT_MIN_CHUNK_BYTES,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> list[ChunkSlice]:
    """The chunks due now for an utterance of `total_bytes` of which `sent_bytes` went out.

    Slices end on a sample boundary (an even byte count), so a chunk never splits a pcm16
    sample. Empty when nothing is due (too little new audio and the speaker still talks, or the
    final chunk already went)."""
    if final_sent:
        return []
    step = max(2, max_chunk_bytes - max_chunk_bytes % 2)
    out: list[ChunkSlice] = []
    start, seq = sent_bytes, next_seq
    end_of_audio = total_bytes - total_bytes % 2
    while True:
        waiting = end_of_audio - start
        if not closed and waiting < max(2, min_chunk_bytes):
            return out
        end = min(end_of_audio, start + step)
        final = closed and end == end_of_audio
        out.append(ChunkSlice(seq, start, end, final))
        start, seq = end, seq + 1
        if final:
            return out
