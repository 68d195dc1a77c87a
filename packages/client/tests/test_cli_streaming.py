"""Which mode asks the scheduler for streaming, from the command line."""

from __future__ import annotations

from lingua_client.__main__ import live_session_init, parser


def test_the_live_app_streams_by_default_and_file_mode_only_when_asked() -> None:
    assert live_session_init(parser().parse_args(["--mic"])).enable_streaming_asr is True
    off = live_session_init(parser().parse_args(["--mic", "--no-stream"]))
    assert off.enable_streaming_asr is None  # not asked: a v0.1 session
    assert getattr(parser().parse_args(["--file", "a.wav"]), "stream", False) is False
    assert parser().parse_args(["--file", "a.wav", "--stream"]).stream is True
