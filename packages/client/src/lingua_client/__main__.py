"""`hatch run client --mic` for live captions, `hatch run client --file a.wav` for recordings.

hatch run client --mic --src en --tgt en
hatch run client --mic --room-create --name Ana --tgt en
hatch run client --mic --room 123456 --name Bo --tgt zh
hatch run client --file a.wav --file b.wav --json --save-tts out/
hatch run client --file a.wav --stream --json   # real time, partial transcripts as they come
hatch run client --web [--host 127.0.0.1] [--port 8080]   # the web client; prints its URL
"""

from __future__ import annotations

import argparse
import logging
import sys

from lingua_protocol import PipelineConfig, SessionInit

from ._scheduler_url import BadSchedulerUrl, check_scheduler_url

KEYS = """keys in the live app:
  space   cut now: send what you said so far; what you say next is the next utterance
  m       mute / unmute the microphone
  t       translated speech on / off (off: the scheduler is asked for text only)
  c       save the transcript to lingua-transcript.txt
  q       quit (Ctrl-C too)

exit status: 0 done, 1 an utterance failed (--file), 2 bad arguments, unreadable file,
unreachable scheduler (--file) or no audio device."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The examples and key list as written, and every option's default."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lingua-client",
        description=__doc__,
        epilog=KEYS,
        formatter_class=HelpFormatter,
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--mic", action="store_true", help="live captions from the microphone")
    mode.add_argument("--file", action="append", metavar="WAV", help="send WAV files")
    mode.add_argument("--web", action="store_true", help="serve the web client; prints its URL")
    p.add_argument("--host", default="127.0.0.1", help="--web: address to listen on")
    p.add_argument("--port", type=int, default=8080, help="--web: port to listen on")
    p.add_argument(
        "--scheduler",
        default="ws://127.0.0.1:5010/ws/session",
        help="the scheduler's session URL; several, comma-separated: instances of one cluster",
    )
    p.add_argument("--src", default="auto", help="spoken language (zh, en, ... or auto)")
    p.add_argument("--tgt", default="en", help="language to translate into")
    p.add_argument("--no-tts", action="store_true", help="text only, no translated speech")
    p.add_argument("--pairing-code", help="bind the session to a private node")
    p.add_argument("--json", action="store_true", help="--file: print JSON lines")
    p.add_argument("--save-tts", metavar="DIR", help="--file: write the returned speech as WAV")
    p.add_argument("--vad", action="store_true", help="--file: cut long files with VAD")
    p.add_argument(
        "--stream",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,  # unset: each mode's own default, stated in the help
        help="send speech while it is spoken and show partial transcripts (default: on for "
        "--mic, off for --file, where files are then played in real time); a scheduler that "
        "does not offer streaming gets whole utterances",
    )
    p.add_argument("--room-create", action="store_true", help="create a room; prints its code")
    p.add_argument("--room", metavar="CODE", help="join a room")
    p.add_argument("--name", help="your name in a room")
    p.add_argument(
        "--full-duplex",
        action="store_true",
        help="play translated speech even while you talk (default: it waits until you pause)",
    )
    p.add_argument("--start-threshold", type=float, default=0.5, help="VAD speech start")
    p.add_argument("--hangover-ms", type=int, default=500, help="pause that ends an utterance")
    p.add_argument("--max-utterance-s", type=float, default=15.0, help="longest utterance")
    p.add_argument("--log-level", default="WARNING")
    p.add_argument(
        "--log-file",
        default="lingua-client.log",
        help="--mic: where log lines and audio libraries' messages go while the app runs",
    )
    return p


def live_session_init(args: argparse.Namespace) -> SessionInit:
    """The `--mic` session: it asks for streaming unless `--no-stream` was given."""
    return SessionInit(
        src_lang=args.src,
        tgt_lang=args.tgt,
        pairing_code=args.pairing_code,
        pipeline=PipelineConfig(use_tts=not args.no_tts),
        enable_streaming_asr=None if getattr(args, "stream", None) is False else True,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        check_scheduler_url(args.scheduler)
    except BadSchedulerUrl as exc:
        print(f"lingua-client: {exc}", file=sys.stderr)
        return 2
    if args.web:
        if "," in args.scheduler:
            print(
                "lingua-client: --web takes one scheduler URL (a cluster's balancer)",
                file=sys.stderr,
            )
            return 2
        logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
        from ._web_server import serve_web

        return serve_web(args.host, args.port, args.scheduler)
    if args.file:
        logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
        from ._files import main_files

        return main_files(args)

    from ._audio_io import Microphone, NoAudioDevice, Player, check_devices

    try:
        check_devices(need_input=True, need_output=False)
    except NoAudioDevice as exc:
        print(f"lingua-client: {exc}", file=sys.stderr)
        return 2
    from ._app import run_app
    from ._cutter import CutterSettings
    from ._screen_guard import stderr_to_file

    init = live_session_init(args)
    player = None if args.no_tts else Player()
    with stderr_to_file(args.log_file, args.log_level.upper()):
        if player is not None:
            player.start()  # no output device: one line in the app, captions go on
        try:
            return run_app(
                url=args.scheduler,
                init=init,
                source=Microphone(),
                player=player,
                cutter_settings=CutterSettings(
                    start_threshold=args.start_threshold,
                    hangover_ms=args.hangover_ms,
                    max_utterance_s=args.max_utterance_s,
                ),
                room_create=args.room_create,
                room_code=args.room,
                display_name=args.name,
                full_duplex=args.full_duplex,
            )
        finally:
            if player is not None:
                player.close()


if __name__ == "__main__":
    raise SystemExit(main())
