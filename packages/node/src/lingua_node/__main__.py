"""`hatch run node [run|pair]` to serve a scheduler; `hatch run node models list|install|remove`.

hatch run node --scheduler ws://127.0.0.1:5010/ws/node --max-jobs 2
hatch run node pair                       # also asks the scheduler for a pairing code
hatch run node models install opus-en-zh@1 --hub http://127.0.0.1:5000
hatch run node models publish-bundled --hub http://127.0.0.1:5000 --hub-token T
                                          # publish the embedded defaults to a hub
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from lingua_protocol import ProtocolError

from ._settings import NodeSettings

log = logging.getLogger("lingua.node")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scheduler",
        help="scheduler URL (ws://host:5010/ws/node); several, comma-separated: instances of "
        "one cluster, tried in turn",
    )
    p.add_argument("--hub", help="model hub URL (http://host:5000)")
    p.add_argument("--models-dir", dest="models_dir")
    p.add_argument("--home", help="state folder (node_id, default models)")
    p.add_argument("--max-jobs", dest="max_jobs", type=int, help="default: measured")
    p.add_argument("--cpu-threads", dest="cpu_threads", type=int, help="per job; default: sized")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: auto")
    p.add_argument("--token", help="node token, if the scheduler requires one")
    p.add_argument("--private", action="store_true", help="serve only paired sessions")
    p.add_argument("--heartbeat", dest="heartbeat_interval_s", type=float)
    p.add_argument("--no-status", action="store_true", help="plain log lines, no live panel")
    p.add_argument("--log-level", default="INFO")


def settings_from(args: argparse.Namespace) -> NodeSettings:
    overrides: dict[str, Any] = {
        k: getattr(args, k)
        for k in (
            "scheduler",
            "hub",
            "models_dir",
            "home",
            "max_jobs",
            "cpu_threads",
            "device",
            "token",
            "heartbeat_interval_s",
        )
        if getattr(args, k, None) is not None
    }
    if getattr(args, "private", False):
        overrides["accept_public_jobs"] = False
    return NodeSettings(**overrides)


def hub_failure(hub: str, exc: Exception) -> int:
    """The one line a `models` command prints when the hub refused or could not be reached."""
    if isinstance(exc, ProtocolError):
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
    else:
        print(f"cannot reach the hub at {hub}: {exc}", file=sys.stderr)
    return 1


def cmd_publish_bundled(args: argparse.Namespace) -> int:
    """Build the embedded default models and publish each to the hub (`--hub`)."""
    import os
    import tempfile
    from pathlib import Path

    from ._hub_publish import bundled_models, publish_folder

    settings = settings_from(args)
    token = args.hub_token or os.environ.get("LINGUA_HUB_TOKEN")
    if not token:
        print("publishing needs the hub's token: --hub-token or LINGUA_HUB_TOKEN", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lingua-bundled-") as tmp:
        for model in bundled_models(Path(tmp), settings.models_path):
            name = f"{model.meta['model_id']}@{model.meta['version']}"
            try:
                record = publish_folder(settings.hub, token, model)
            except (ProtocolError, OSError) as exc:
                return hub_failure(settings.hub, exc)
            if record is None:
                print(f"{name} already published")
            else:
                print(f"published {name} ({record.total_size:,} bytes, {len(record.files)} files)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from ._store import ModelStore

    if args.action == "publish-bundled":
        return cmd_publish_bundled(args)
    settings = settings_from(args)
    store = ModelStore(settings.models_path)
    if args.action == "list":
        entries = store.installed()
        if not entries:
            print("no models installed from a hub (the embedded defaults are always there)")
        for e in entries:
            print(
                f"{e['model_id']}@{e['version']}  {e.get('kind')}  {e.get('engine')}  {e['path']}"
            )
        return 0
    if args.action == "remove":
        if store.remove(args.model):
            print(f"removed {args.model}")
            return 0
        print(f"{args.model} is not installed", file=sys.stderr)
        return 1
    model_id, _, version = args.model.partition("@")
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done)

        try:
            entry = store.install(settings.hub, model_id, version or None, progress=progress)
        except (ProtocolError, OSError) as exc:
            return hub_failure(settings.hub, exc)
    print(f"installed {entry['model_id']}@{entry['version']} ({entry['kind']})")
    return 0


def cmd_run(args: argparse.Namespace, pair: bool) -> int:
    from rich.console import Console
    from rich.live import Live

    from . import _capabilities as capabilities
    from ._agent import FatalNodeError, NodeAgent
    from ._identity import credential, node_id, store_credential
    from ._loader import StoreWatcher, load_backends, node_device
    from ._pipeline import Pipeline
    from ._status import render
    from ._streaming.recognizer import StreamConfig
    from ._streaming.stream_job import StreamJob

    settings = settings_from(args)
    console = Console(stderr=True)
    me = node_id(settings.home)
    console.print(f"lingua node {me}: loading models from {settings.models_path} ...")
    device = node_device(settings)
    console.print(f"device: {device} (asked for {settings.device}; every model is self-tested)")
    backends = load_backends(settings)
    pipeline = Pipeline(backends, me)
    console.print(
        f"max concurrent jobs: {backends.max_jobs}, streams: {backends.max_streams} "
        f"({backends.sizing})"
    )

    def register() -> Any:
        return capabilities.register_message(
            backends,
            me,
            device=device,
            max_jobs=backends.max_jobs,
            accept_public=settings.accept_public_jobs,
            token=settings.token,
            binary_audio=settings.binary_audio,
        )

    live: Live | None = None
    agent: NodeAgent

    def refresh() -> None:
        if live is not None:
            live.update(render(agent, settings.scheduler))

    stream_config = StreamConfig(interval_ms=settings.stream_interval_ms)

    def open_stream(job: Any) -> StreamJob:
        return StreamJob.open(job, pipeline, me, stream_config)

    agent = NodeAgent(
        register,
        pipeline.run,
        url=settings.scheduler,
        node_id=me,
        max_jobs=backends.max_jobs,
        heartbeat_interval_s=settings.heartbeat_interval_s,
        reconnect_min_s=settings.reconnect_min_s,
        reconnect_max_s=settings.reconnect_max_s,
        binary_audio=settings.binary_audio,
        request_pairing=pair,
        on_change=refresh,
        refresh=StoreWatcher(settings, backends),
        credential=credential(settings.home),
        on_credential=lambda value: store_credential(settings.home, value),
        withdrawals=backends.health.take_withdrawals,
        open_stream=open_stream if backends.max_streams else None,
        max_streams=backends.max_streams,
    )
    langs = capabilities.language_capabilities(backends)
    console.print(
        f"ASR {len(langs.asr_languages or [])} languages, speech->"
        f"{','.join(langs.speech_translation_targets or [])}, "
        f"NMT pairs {[f'{p.src}-{p.tgt}' for p in langs.nmt_pairs or []]}, "
        f"TTS {len(langs.tts_languages or [])} languages"
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(agent.drain_and_stop()))
        await agent.run()

    use_live = console.is_terminal and not args.no_status
    try:
        if use_live:
            with Live(
                render(agent, settings.scheduler), console=console, refresh_per_second=4
            ) as lv:
                live = lv
                asyncio.run(main())
        else:
            if pair:
                shown: set[str] = set()

                def announce() -> None:
                    code = agent.stats.pairing_code
                    if code and code not in shown:
                        shown.add(code)
                        print(f"pairing code: {code}", flush=True)

                agent.on_change = announce
            asyncio.run(main())
    except FatalNodeError as exc:
        console.print(f"[red]the scheduler refused this node:[/] {exc}")
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="lingua-node",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    _common(sub.add_parser("run", help="serve the scheduler (the default)"))
    _common(sub.add_parser("pair", help="serve the scheduler and show a pairing code"))
    models = sub.add_parser(
        "models", help="list, install or remove models from the hub; publish the defaults to it"
    )
    _common(models)
    models.add_argument("action", choices=["list", "install", "remove", "publish-bundled"])
    models.add_argument("--hub-token", dest="hub_token", help="the hub's write token")
    models.add_argument("model", nargs="?", help="MODEL_ID[@VERSION]")
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if args.command == "models":
        if args.action in ("install", "remove") and not args.model:
            parser.error("models install/remove need a MODEL_ID")
        return cmd_models(args)
    return cmd_run(args, pair=args.command == "pair")


if __name__ == "__main__":
    raise SystemExit(main())
