"""The web client in headless Chromium against a real scheduler and a real node (Whisper on
CPU), its microphone fed the committed speech through Chromium's fake capture device.

One scheduler and one node serve the whole module (starting Whisper is the slow part); the
restart test kills and restarts that scheduler on the same port, and runs last."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from lingua_client import LocalCluster

from .e2e_support import SPEECH, one_node_cluster
from .web_support import (
    browser_missing,
    capture_wav,
    chromium,
    chromiums,
    page_address,
    restart_scheduler,
    room_captions,
    start_page,
    wait_finals,
    wait_until,
    web_client,
)

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))

PLAYED = "document.querySelector('[data-testid=played-ms]')"
ENGLISH = [("weather.wav", "sunny"), ("report.wav", "report"), ("market.wav", "apples")]


@pytest.fixture(scope="module")
def web_cluster(
    tmp_path_factory: pytest.TempPathFactory, shared_models: Path
) -> Iterator[LocalCluster]:
    with one_node_cluster(tmp_path_factory.mktemp("web-cluster"), shared_models, 2) as c:
        yield c


@pytest.fixture(scope="module")
def web_url(web_cluster: LocalCluster) -> Iterator[str]:
    with web_client(web_cluster.session_url) as url:
        yield url


def test_english_speech_becomes_captions_in_order_and_speech_plays(
    web_url: str, tmp_path: Path
) -> None:
    wav = capture_wav([SPEECH / f for f, _ in ENGLISH], tmp_path / "english.wav")
    with chromium(wav) as browser:
        page = browser.new_page()
        # full duplex: the fake microphone keeps playing while the translated speech does
        start_page(page, page_address(web_url, src="en", tgt="en", duplex="1"))
        rows = wait_finals(page, len(ENGLISH))
        for row, (_, word) in zip(rows, ENGLISH, strict=True):
            assert row["state"] == "done", rows
            assert word in row["src"].lower(), rows
            assert float(row["latency_ms"]) > 0
        wait_until(page, f"Number({PLAYED}.textContent) > 500")
        played = float(page.get_by_test_id("played-ms").text_content())
        wait_until(page, f"Number({PLAYED}.textContent) > {played}")
        assert page.get_by_test_id("node").text_content() not in ("", "–")


# Whisper base's speech translation of the browser's live capture is the one step here whose
# output varies from run to run: under CI load Chromium's fake microphone is cut at other
# places, and a low-confidence decode falls back to sampling (seen once in six CI runs: a
# hallucinated "Good night ... your sister's night"). One rerun, so a real regression (two
# wrong translations in a row) still fails.
@pytest.mark.flaky(reruns=1)
def test_spanish_speech_is_translated_into_english(web_url: str, tmp_path: Path) -> None:
    items = json.loads((SPEECH / "foreign.json").read_text())
    wav = capture_wav([SPEECH / i["file"] for i in items], tmp_path / "spanish.wav")
    with chromium(wav) as browser:
        page = browser.new_page()
        start_page(page, page_address(web_url, src="es", tgt="en", tts="0"))
        rows = wait_finals(page, len(items))
    for item, row in zip(items, rows, strict=True):
        assert row["state"] == "done", rows
        assert any(k in row["tr"].lower() for k in item["keywords"]), (item["english"], row)


@pytest.mark.flaky(reruns=1)  # Whisper's translation of live capture: see the Spanish test
def test_two_pages_in_a_room_hear_each_other_in_their_own_language(
    web_url: str, tmp_path: Path
) -> None:
    """Ana reads Spanish into English, Bo keeps Spanish (the node's Whisper translates speech
    only into English; a same-language transcript is the other target it serves)."""
    ana_wav = capture_wav([SPEECH / "es_table.wav"], tmp_path / "ana.wav", tail_s=4)
    bo_wav = capture_wav([SPEECH / "es_station.wav"], tmp_path / "bo.wav", tail_s=4)
    with chromiums(ana_wav, bo_wav) as (ana_browser, bo_browser):
        ana = ana_browser.new_page()
        start_page(ana, page_address(web_url, src="es", tgt="en", tts="0", name="Ana"))
        wait_until(ana, "document.querySelector('[data-testid=room-create]').disabled === false")
        ana.get_by_test_id("room-create").click()
        wait_until(
            ana, "/[0-9]{6}/.test(document.querySelector('[data-testid=room-code]').textContent)"
        )
        code = ana.get_by_test_id("room-code").text_content().strip("· ").strip()
        bo = bo_browser.new_page()
        start_page(bo, page_address(web_url, src="es", tgt="es", tts="0", name="Bo", room=code))
        wait_until(ana, "document.querySelectorAll('[data-testid=members] li').length === 2", 20)
        for page in (ana, bo):
            wait_until(
                page, "document.querySelectorAll('.room[data-testid=caption-room]').length >= 1", 90
            )
        heard_by_ana = room_captions(ana)[0]
        heard_by_bo = room_captions(bo)[0]
    assert "Bo" in heard_by_ana["src"]
    assert any(k in heard_by_ana["tr"].lower() for k in ("station", "train")), heard_by_ana
    assert "Ana" in heard_by_bo["src"]
    assert any(k in heard_by_bo["tr"].lower() for k in ("mesa", "reserv")), heard_by_bo


def test_a_pair_no_node_serves_is_said_before_starting(web_url: str) -> None:
    with chromium(None) as browser:
        page = browser.new_page()
        page.goto(page_address(web_url, src="en", tgt="zh"))
        note = page.get_by_test_id("pair-note")
        note.filter(has_text="No node serves").wait_for(timeout=15000)
        assert "English (en)" in (note.text_content() or "")


def test_space_cuts_the_speech_so_far(web_url: str, tmp_path: Path) -> None:
    wav = capture_wav([SPEECH / "river.wav"], tmp_path / "river.wav", tail_s=15)
    with chromium(wav) as browser:
        page = browser.new_page()
        start_page(page, page_address(web_url, src="en", tgt="en", tts="0"))
        wait_until(
            page, "document.querySelector('[data-testid=vad-state]').textContent === 'speech'"
        )
        page.wait_for_timeout(2000)  # into the sentence (positions the cut; syncs nothing)
        page.locator("body").press("Space")
        first, rest = wait_finals(page, 2)
    assert "summer" not in first["src"].lower(), first
    assert first["src"].strip(), first
    assert "summer" in rest["src"].lower(), rest


def test_a_denied_microphone_shows_the_message(web_url: str) -> None:
    with chromium(None, fake_ui=False) as browser:
        context = browser.new_context(permissions=[])
        page = context.new_page()
        page.on("dialog", lambda d: d.dismiss())
        start_page(page, web_url)
        wait_until(
            page, "document.querySelector('[data-testid=status]').dataset.mic === 'denied'", 15
        )
        status = page.get_by_test_id("status").text_content()
        assert "Microphone access was denied" in status
        assert page.get_by_test_id("start").is_enabled()
        assert page.get_by_test_id("stop").is_disabled()


def test_no_microphone_shows_the_message(web_url: str) -> None:
    with chromium(None, fake_device=False) as browser:
        page = browser.new_page()
        start_page(page, web_url)
        wait_until(page, "document.querySelector('[data-testid=status]').dataset.mic", 15)
        assert page.get_by_test_id("status").get_attribute("data-mic") == "no_device"
        assert "No microphone was found" in page.get_by_test_id("status").text_content()


def test_a_page_recovers_from_a_scheduler_restart_and_loses_nothing(
    web_cluster: LocalCluster, web_url: str, tmp_path: Path
) -> None:
    wav = capture_wav([SPEECH / f for f, _ in ENGLISH], tmp_path / "restart.wav")
    with chromium(wav) as browser:
        page = browser.new_page()
        start_page(page, page_address(web_url, src="en", tgt="en", tts="0"))
        wait_finals(page, 1)
        scheduler = next(p for p in reversed(web_cluster.procs) if p.name.startswith("scheduler"))
        scheduler.kill()
        wait_until(page, "document.querySelector('[data-testid=status]').dataset.state === 'error'")
        # an utterance is cut while the scheduler is down: it waits on the page
        wait_until(
            page, "document.querySelectorAll('[data-testid=caption-pending]').length >= 1", 30
        )
        restart_scheduler(web_cluster, scheduler)
        web_cluster.wait_node_ready(next(p for p in web_cluster.procs if p.name == "node"))
        rows = wait_finals(page, len(ENGLISH), timeout_s=90)
        assert page.get_by_test_id("status").text_content().startswith("connected")
    for row, (_, word) in zip(rows, ENGLISH, strict=True):
        assert row["state"] == "done", rows
        assert word in row["src"].lower(), rows
