"""`hatch run scheduler [--host H] [--port P] [--config scheduler.toml]`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from pathlib import Path

from .server import SchedulerServer
from .settings import SchedulerSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lingua-scheduler", description=__doc__)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--config", type=Path, help="TOML file ([scheduler] table or top level)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    settings = SchedulerSettings.load(args.config, host=args.host, port=args.port)
    logging.getLogger("lingua.scheduler").info("settings %s", json.dumps(settings.public_dict()))

    async def run() -> None:
        server = SchedulerServer(settings)
        await server.start()
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

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
