"""Helpers for the browser tests: the web client served on a free port, Chromium (Debian's
package, driven by Playwright) with a fake microphone that plays a WAV made from the
committed speech, and reading the page's test hooks.

Chromium loops the fake-capture file, so each WAV ends in a long silence and tests stop
reading after the captions they expect."""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import threading
import time
import wave
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
from lingua_client import LocalCluster, Proc, make_server, page_url

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CAPTURE_RATE_HZ = 48000

BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a small /dev/shm
]


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is not installed"
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed (apt-get install chromium)"
    return None


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        if w.getnchannels() > 1:
            pcm = pcm.reshape(-1, w.getnchannels()).mean(axis=1)
        rate = w.getframerate()
    if rate != CAPTURE_RATE_HZ:
        import soxr

        pcm = soxr.resample(pcm, rate, CAPTURE_RATE_HZ)
    return pcm.astype(np.float32)


def capture_wav(
    clips: Sequence[Path], out: Path, lead_s: float = 0.8, gap_s: float = 1.5, tail_s: float = 8.0
) -> Path:
    """One 48 kHz mono WAV: silence, each clip followed by a pause, and a long silent tail."""
    silence = lambda s: np.zeros(int(s * CAPTURE_RATE_HZ), np.float32)  # noqa: E731
    parts = [silence(lead_s)]
    for i, clip in enumerate(clips):
        parts.append(read_wav(clip))
        parts.append(silence(gap_s if i < len(clips) - 1 else tail_s))
    pcm = np.concatenate(parts)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(CAPTURE_RATE_HZ)
        w.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
    return out


@contextlib.contextmanager
def web_client(scheduler_url: str) -> Iterator[str]:
    """The web client served by `lingua_client._web_server` on a free port; yields its URL."""
    server = make_server("127.0.0.1", 0, scheduler_url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield page_url(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def page_address(base: str, **query: str) -> str:
    return f"{base}?{urlencode(query)}" if query else base


@contextlib.contextmanager
def chromiums(
    *wavs: Path | None, fake_ui: bool = True, fake_device: bool = True
) -> Iterator[list[Any]]:
    """One headless Chromium per WAV, each microphone playing its own file (the fake capture
    file is a browser-wide flag). With fake_ui the permission prompt is answered yes; without
    it the test decides through the browser context; without fake_device the browser has no
    microphone at all (this machine has none). One Playwright drives them all: its sync
    API runs one event loop per thread."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browsers = []
        try:
            for wav in wavs:
                args = list(BROWSER_ARGS)
                if fake_device:
                    args.append("--use-fake-device-for-media-stream")
                if fake_ui:
                    args.append("--use-fake-ui-for-media-stream")
                if wav is not None:
                    args.append(f"--use-file-for-fake-audio-capture={wav}")
                browsers.append(
                    pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
                )
            yield browsers
        finally:
            for browser in browsers:
                browser.close()


@contextlib.contextmanager
def chromium(wav: Path | None, fake_ui: bool = True, fake_device: bool = True) -> Iterator[Any]:
    with chromiums(wav, fake_ui=fake_ui, fake_device=fake_device) as browsers:
        yield browsers[0]


def finals(page: Any) -> list[dict[str, str]]:
    """The page's final captions, in order: state, transcript, translation, latency."""
    result: list[dict[str, str]] = page.eval_on_selector_all(
        "[data-testid=caption-final]",
        """els => els.map(e => ({
            state: e.dataset.state || '',
            src: (e.querySelector('.src') || {}).textContent || '',
            tr: (e.querySelector('.tr') || {}).textContent || '',
            latency_ms: e.dataset.latencyMs || '',
        }))""",
    )
    return result


def room_captions(page: Any) -> list[dict[str, str]]:
    result: list[dict[str, str]] = page.eval_on_selector_all(
        "[data-testid=caption-room]",
        """els => els.map(e => ({
            src: (e.querySelector('.src') || {}).textContent || '',
            tr: (e.querySelector('.tr') || {}).textContent || '',
        }))""",
    )
    return result


def wait_until(page: Any, expression: str, timeout_s: float = 30) -> Any:
    """Poll a JavaScript expression until it is truthy; returns its value.

    Playwright's wait_for_function evaluates its predicate with `eval`, which the page's
    Content-Security-Policy forbids (as it should): `page.evaluate` goes through the
    DevTools protocol instead, so the tests keep the policy on."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout_s} s: {expression}")
        page.wait_for_timeout(100)


def start_page(page: Any, url: str, timeout_s: float = 30) -> None:
    """Open the page at `url`, wait for its language lists (the scheduler's languages have
    arrived) and press Start."""
    page.goto(url)
    wait_until(
        page, "document.querySelector('[data-testid=tgt-lang]').options.length > 0", timeout_s
    )
    page.get_by_test_id("start").click()


def wait_finals(page: Any, count: int, timeout_s: float = 90) -> list[dict[str, str]]:
    wait_until(
        page,
        f"document.querySelectorAll('[data-testid=caption-final]').length >= {count}",
        timeout_s,
    )
    return finals(page)[:count]


def restart_scheduler(cluster: LocalCluster, down: Proc, timeout_s: float = 60) -> Proc:
    """Start a new scheduler on the port the killed one had, as an operator restarting it
    would; nodes and pages reconnect to the same address."""
    assert not down.alive()
    return cluster.start_scheduler(timeout_s, port=cluster.scheduler_port)
