"""Regenerate docs/screenshots/web-desktop.png and web-phone.png: the web client in headless
Chromium against a real scheduler and a real node, two pages in one room. Ana's microphone
plays English and Spanish clips (source "auto", into English); Bo's plays Spanish (into
English), so Ana's page shows her own captions and Bo's words in English.

    python docs/screenshots/make_web_screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import web_support as web  # noqa: E402
from e2e_support import SPEECH, one_node_cluster  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def shoot(web_url: str, tmp: Path) -> None:
    ana_wav = web.capture_wav(
        [SPEECH / n for n in ("weather.wav", "report.wav", "es_table.wav")],
        tmp / "ana.wav",
        lead_s=4.0,
        tail_s=60,
    )
    bo_wav = web.capture_wav([SPEECH / "es_station.wav"], tmp / "bo.wav", lead_s=6.0, tail_s=60)
    with web.chromiums(ana_wav, bo_wav) as (ana_browser, bo_browser):
        ana = ana_browser.new_page(viewport={"width": 1280, "height": 800})
        web.start_page(ana, web.page_address(web_url, src="auto", tgt="en", name="Ana", duplex="1"))
        web.wait_until(ana, "!document.querySelector('[data-testid=room-create]').disabled")
        ana.get_by_test_id("room-create").click()
        web.wait_until(ana, "/[0-9]{6}/.test(document.querySelector('#room-code').textContent)")
        code = ana.get_by_test_id("room-code").text_content().strip("· ").strip()
        bo = bo_browser.new_page()
        bo_url = web.page_address(web_url, src="es", tgt="en", tts="0", name="Bo", room=code)
        web.start_page(bo, bo_url)
        web.wait_until(
            ana,
            "document.querySelectorAll('[data-testid=caption-final]').length >= 3"
            " && document.querySelectorAll('.room[data-testid=caption-room]').length >= 1",
            180,
        )
        web.wait_until(
            ana, "Number(document.querySelector('[data-testid=played-ms]').textContent) > 0"
        )
        ana.screenshot(path=str(OUT / "web-desktop.png"))
        ana.set_viewport_size({"width": 390, "height": 844})
        ana.evaluate("document.getElementById('room-panel').open = false; window.scrollTo(0, 0)")
        ana.screenshot(path=str(OUT / "web-phone.png"))


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        one_node_cluster(Path(tmp) / "cluster", max_jobs=2) as cluster,
        web.web_client(cluster.session_url) as url,
    ):
        shoot(url, Path(tmp))
    for name in ("web-desktop.png", "web-phone.png"):
        print(f"wrote {OUT / name} ({(OUT / name).stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
