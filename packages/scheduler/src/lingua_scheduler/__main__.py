"""`hatch run scheduler [--host H] [--port P] [--config scheduler.toml]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import get_args

from lingua_protocol import NodeCommand, raise_open_files_limit

from ._server import SchedulerServer
from ._settings import SchedulerSettings

YOUNG_COLLECTION_THRESHOLD = 20_000
"""Net new container objects between two collections of the youngest generation (CPython's
default is 700)."""


def tune_collector() -> None:
    """Set the garbage collector for a server that lives long and answers in milliseconds.

    Everything alive once the server has started (modules, schemas, settings) lives as long
    as the process: `gc.freeze()` keeps it out of the collector's full passes, which would
    otherwise stall every connection. And each utterance leaves some tens of objects alive
    for a while (its job until the result, deadline entries, the replay of its result): with
    the default threshold a young collection ran inside about one utterance in thirteen,
    on a core whose caches had gone cold. At `YOUNG_COLLECTION_THRESHOLD` it runs inside
    about one in four hundred; walking 20,000 young objects takes ~0.1 ms on a warm core,
    and they are a few MB at most."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


def control(argv: list[str]) -> int:
    """`hatch run scheduler control NODE_ID drain|resume|shutdown|reload_config`."""
    from lingua_protocol import Error, NodeControl, ProtocolError, parse_server_message
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    p = argparse.ArgumentParser(prog="lingua-scheduler control")
    p.add_argument("node_id")
    p.add_argument("command", choices=get_args(NodeCommand))
    p.add_argument("--url", default="ws://127.0.0.1:5010")
    p.add_argument(
        "--token",
        default=os.environ.get("LINGUA_SCHEDULER_ADMIN_TOKEN"),
        help="the scheduler's admin_token (default: $LINGUA_SCHEDULER_ADMIN_TOKEN)",
    )
    args = p.parse_args(argv)
    if not args.token:
        p.error("the operator token is required (--token or LINGUA_SCHEDULER_ADMIN_TOKEN)")
    url = f"{args.url.rstrip('/')}/ws/admin"
    message = NodeControl(command=args.command, reason="operator", node_id=args.node_id)
    headers = {"Authorization": f"Bearer {args.token}"}  # never in the URL, where logs keep it
    try:
        ws = connect(url, additional_headers=headers, open_timeout=10)
    except InvalidStatus as exc:
        print(f"refused: HTTP {exc.response.status_code}", file=sys.stderr)
        return 1
    with ws:
        ws.send(message.to_json())
        try:
            reply = parse_server_message(ws.recv(timeout=10))
        except (ConnectionClosed, TimeoutError, ProtocolError):  # closed without an error: done
            print(f"{args.command} sent to {args.node_id}")
            return 0
    if isinstance(reply, Error):
        print(f"{reply.code}: {reply.message}", file=sys.stderr)
        return 1
    return 0


FILES_BESIDES_CONNECTIONS = 256
"""File descriptors kept free beyond `max_connections`: logs, the state file, HTTP requests,
connections still in their opening handshake."""


def _raise_file_limit(max_connections: int) -> None:
    """Raise the soft open-files limit towards the hard one, so `max_connections` is reached
    (and refused cleanly with 503) before `accept()` runs out of file descriptors."""
    log = logging.getLogger("lingua.scheduler")
    wanted = max_connections + FILES_BESIDES_CONNECTIONS
    soft, problem = raise_open_files_limit(wanted)
    if problem:
        log.warning("cannot raise the open-files limit: %s", problem)
    if soft is not None and soft < wanted:
        log.warning(
            "open-files limit %d is below max_connections %d + %d: lower max_connections or "
            "raise the limit (ulimit -n)",
            soft,
            max_connections,
            FILES_BESIDES_CONNECTIONS,
        )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "control":
        return control(argv[1:])
    parser = argparse.ArgumentParser(prog="lingua-scheduler", description=__doc__)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--config", type=Path, help="TOML file ([scheduler] table or top level)")
    parser.add_argument(
        "--redis", help="redis://HOST:6379/0: join the cluster of instances sharing this Redis"
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # websockets logs every opened and refused connection at INFO: under a flood of
    # connections that is a line per event. The scheduler logs its limits once per interval.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:  # --log-level DEBUG shows them
        logging.getLogger("websockets").setLevel(logging.WARNING)
    settings = SchedulerSettings.load(
        args.config, host=args.host, port=args.port, redis_url=args.redis
    )
    _raise_file_limit(settings.max_connections)
    logging.getLogger("lingua.scheduler").info("settings %s", json.dumps(settings.public_dict()))

    async def run() -> None:
        server = SchedulerServer(settings)
        await server.start()
        tune_collector()
        print(
            f"lingua scheduler ready on ws://{settings.host}:{server.port} (/ws/session, /ws/node)",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
        runner.run(run())
    return 0


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (`auto`, as uvicorn does) or asked for; the standard loop else.
    The scheduler's own work per utterance is tens of microseconds: most of its time per
    message is the event loop and transport, which uvloop runs in C."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SystemExit("event_loop = uvloop, but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    raise SystemExit(main())
