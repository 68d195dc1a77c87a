"""Regenerate docs/screenshots/client.svg: the Textual client against a real scheduler and a
real node, fed the committed test speech through a recorded-microphone test double.

    python docs/screenshots/make_client_screenshot.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packages" / "client" / "tests"))

from client_support import clip  # noqa: E402
from fake_mic import RecordedMic  # noqa: E402
from lingua_client import (  # noqa: E402
    LinguaApp,
    LocalCluster,
)
from lingua_node import NodeSettings  # noqa: E402
from lingua_protocol import SessionInit  # noqa: E402


async def shoot(url: str, out: Path) -> None:
    pause = np.zeros(16000, np.float32)
    names = ["weather.wav", "report.wav", "es_table.wav"]
    audio = np.concatenate([x for n in names for x in (clip(n), pause)])
    mic = RecordedMic(audio, pace_s=0.032)  # 512 samples = 32 ms: speech arrives in real time
    app = LinguaApp(url, SessionInit(src_lang="auto", tgt_lang="en"), mic, None)
    async with app.run_test(size=(120, 22)) as pilot:
        async with asyncio.timeout(120):
            while sum(r.state == "done" for r in app.captions.ordered()) < len(names):
                await pilot.pause(0.1)
        await pilot.pause(0.3)
        app.save_screenshot(str(out))
        await pilot.press("q")


def main() -> None:
    out = ROOT / "docs" / "screenshots" / "client.svg"
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalCluster(Path(tmp), models_dir=NodeSettings().models_path) as cluster,
    ):
        cluster.start_scheduler()
        cluster.wait_node_ready(cluster.start_node("node"))
        asyncio.run(shoot(cluster.session_url, out))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
