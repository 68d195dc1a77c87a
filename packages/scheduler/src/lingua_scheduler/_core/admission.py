"""Whether a session may open one more utterance now: the index window and flow control.

A whole `utterance` and the first `audio_chunk` of a streamed one open an utterance the same
way, and a stream's later chunks grow its bytes; all of them are checked here, before anything
is accepted, so both paths refuse with the same codes and the same words.
"""

from __future__ import annotations

from lingua_protocol import ErrorCode

from .._settings import SchedulerSettings
from .errors import CoreError
from .ordering import ResultSequencer
from .tables import Stats


def check_window(seq: ResultSequencer, index: int, s: SchedulerSettings) -> None:
    """INVALID_MESSAGE for an index that runs too far ahead of the next expected one."""
    window = s.utterance_index_window
    ahead = seq.ahead_of_head(index)
    if ahead >= window:
        raise CoreError(
            ErrorCode.INVALID_MESSAGE,
            f"utterance_index {index} is {ahead} ahead of the next expected index "
            f"{seq.next_index}; at most {window - 1} ahead is accepted",
            field="utterance_index",
            utterance_index=index,
        )


def check_flow(
    seq: ResultSequencer,
    index: int,
    size: int,
    s: SchedulerSettings,
    stats: Stats,
    *,
    opens: bool = True,
) -> None:
    """RATE_LIMITED when `size` more bytes (and, if it `opens` an utterance, one more
    utterance) would pass the session's flow-control window."""
    if (opens and seq.pending() >= s.max_in_flight_utterances) or (
        seq.in_flight_bytes + size > s.max_in_flight_bytes
    ):
        stats.count("utterances_flow_limited")
        raise CoreError(
            ErrorCode.RATE_LIMITED,
            f"flow control: {seq.pending()} utterance(s) and {seq.in_flight_bytes} bytes "
            f"unanswered, {size} bytes more asked; at most {s.max_in_flight_utterances} and "
            f"{s.max_in_flight_bytes} bytes; wait for results",
            utterance_index=index,
        )
