"""The web client's plain modules (frames, session, cutter, captions) run in headless
Chromium with no scheduler: a scripted test-double WebSocket and a fake clock drive the
session, and the frames are checked against lingua_protocol both ways."""

from __future__ import annotations

import base64
import importlib.util
import shutil
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lingua_client._web_server import make_server, page_url
from lingua_protocol import (
    AudioData,
    TranslationResult,
    Utterance,
    encode_frame,
    parse_client_message,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SPEECH = Path(__file__).resolve().parents[3] / "tests" / "data" / "speech"
MISSING = (
    "the playwright Python package is not installed"
    if importlib.util.find_spec("playwright") is None
    else None
    if Path(CHROMIUM).exists()
    else "Debian's chromium is not installed"
)
pytestmark = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))

# A scripted WebSocket and clock: `sent` collects what the page sends, `timers` what it arms.
HARNESS = """
globalThis.T = { now: 0, timers: [], sockets: [] };
globalThis.FakeWS = class {
  constructor(url) { this.url = url; this.sent = []; T.sockets.push(this); }
  send(data) {
    this.sent.push(typeof data === 'string' ? JSON.parse(data) : {binary: Array.from(data)});
  }
  close() { this.closed = true; if (this.onclose) this.onclose(); }
  deliver(message) { this.onmessage({ data: JSON.stringify(message) }); }
};
globalThis.deps = {
  WebSocket: FakeWS,
  now: () => T.now,
  random: () => 1,
  setTimeout: (f, ms) => { const t = { at: T.now + ms, f }; T.timers.push(t); return t; },
  clearTimeout: (t) => { T.timers = T.timers.filter((x) => x !== t); },
};
// A page Session on a fresh scripted socket and clock: opened, acked as session s1 with `ack`'s
// fields added, and `count` utterances handed to it. `events` is what it told the page.
globalThis.openSession = async (ack, count) => {
  const {Session} = await import('./session.js');
  T.sockets = []; T.timers = []; T.now = 0;
  const events = [];
  const s = new Session('ws://x/ws/session', {src_lang: 'en', tgt_lang: 'en'},
                        (e) => events.push(e), deps);
  s.start();
  const ws = T.sockets[0];
  ws.onopen();
  ws.deliver({type: 'session_init_ack', session_id: 's1', ...ack});
  for (let i = 0; i < count; i++) s.sendUtterance(new Uint8Array(320));
  return {s, ws, events};
};
globalThis.advance = (ms) => {
  T.now += ms;
  for (;;) {
    const due = T.timers.filter((t) => t.at <= T.now);
    if (!due.length) return;
    T.timers = T.timers.filter((t) => t.at > T.now);
    for (const t of due) t.f();
  }
};
"""


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    server = make_server("127.0.0.1", 0, "ws://127.0.0.1:9/ws/session")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            p = browser.new_page()
            p.goto(page_url(server))
            p.evaluate(HARNESS)
            yield p
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


def test_an_utterance_frame_from_the_page_parses_in_lingua_protocol(page: Any) -> None:
    frame = page.evaluate(
        """async () => {
        const p = await import('./protocol.js');
        const pcm = p.floatToPcm16(new Float32Array([0, 0.5, -0.5, 1, -1]));
        const header = {type: 'utterance', session_id: 's', utterance_index: 3,
                        manual_cut: true, audio_format: 'pcm16', sample_rate: 16000};
        return Array.from(p.utteranceWire(header, pcm, true));
    }"""
    )
    message = parse_client_message(bytes(frame))
    assert isinstance(message, Utterance)
    assert message.utterance_index == 3
    assert message.manual_cut
    samples = np.frombuffer(message.audio.to_bytes(), "<i2")
    assert samples.tolist() == [0, 16383, -16384, 32767, -32768]


def test_a_result_frame_from_lingua_protocol_decodes_on_the_page(page: Any) -> None:
    tts = np.arange(-5, 5, dtype="<i2").tobytes()
    result = TranslationResult(
        session_id="s",
        utterance_index=0,
        text_asr="hola",
        text_translated="hello",
        tts_audio=AudioData.from_bytes(tts),
        tts_sample_rate=22050,
    )
    for wire in (list(encode_frame(result)), result.to_json()):
        decoded = page.evaluate(
            """async (wire) => {
            const p = await import('./protocol.js');
            const data = typeof wire === 'string' ? wire : new Uint8Array(wire).buffer;
            const {message, audio} = p.decodeMessage(data);
            return {message, audio: Array.from(audio)};
        }""",
            wire,
        )
        assert decoded["message"]["text_translated"] == "hello"
        assert "tts_audio" not in decoded["message"]
        assert bytes(decoded["audio"]) == tts


def test_the_page_keeps_within_the_window_and_retries_rate_limited(page: Any) -> None:
    sent = page.evaluate(
        """async () => {
        const {ws, events} = await openSession(
            {resume_token: 'r', binary_audio: false, max_in_flight_utterances: 2}, 3);
        const indexes = () => ws.sent.filter((m) => m.type === 'utterance')
                                     .map((m) => m.utterance_index);
        const out = {window: indexes()};
        ws.deliver({type: 'error', code: 'RATE_LIMITED', message: 'slow down',
                    session_id: 's1', utterance_index: 1});
        out.afterRateLimited = indexes();
        out.finalsAfterRateLimited = events.filter((e) => e.kind === 'answer').length;
        advance(1000);
        out.afterBackoff = indexes();
        ws.deliver({type: 'translation_result', session_id: 's1', utterance_index: 0,
                    text_asr: 'a', text_translated: 'a'});
        out.afterAnswer = indexes();
        ws.deliver({type: 'translation_result', session_id: 's1', utterance_index: 0,
                    text_asr: 'a', text_translated: 'a'});
        out.answers = events.filter((e) => e.kind === 'answer').map((e) => e.row);
        return out;
    }"""
    )
    assert sent["window"] == [0, 1]  # the third waits on the page
    assert sent["afterRateLimited"] == [0, 1, 2]  # 1 left the window, so 2 went
    assert sent["finalsAfterRateLimited"] == 0  # RATE_LIMITED is not an answer
    assert sent["afterBackoff"] == [0, 1, 2]  # window full again (1 waits, 0 and 2 in flight)
    assert sent["afterAnswer"] == [0, 1, 2, 1]  # 0 answered: 1 goes again, same index
    assert sent["answers"] == [0]  # the replayed answer is shown once


def test_a_scheduler_that_forgot_the_session_gets_everything_unanswered_again(
    page: Any,
) -> None:
    out = page.evaluate(
        """async () => {
        let {s, ws, events} = await openSession({resume_token: 'r1'}, 3);
        ws.deliver({type: 'translation_result', session_id: 's1', utterance_index: 0,
                    text_asr: 'zero'});
        ws.close();                       // the scheduler went away
        s.sendUtterance(new Uint8Array(320));  // cut while it is down: waits on the page
        advance(1000);
        ws = T.sockets[1];
        ws.onopen();
        const resume = ws.sent[0];
        ws.deliver({type: 'error', code: 'INVALID_SESSION', message: 'unknown token'});
        ws = T.sockets[2];
        ws.onopen();
        const fresh = ws.sent[0];
        ws.deliver({type: 'session_init_ack', session_id: 's2', resume_token: 'r2'});
        const resent = ws.sent.filter((m) => m.type === 'utterance')
                              .map((m) => [m.session_id, m.utterance_index]);
        ws.deliver({type: 'error', code: 'NO_AVAILABLE_NODE', message: 'no node yet',
                    session_id: 's2', utterance_index: 0});
        advance(1000);
        for (const [i, text] of [[1, 'two'], [2, 'three'], [3, 'one']]) {
            ws.deliver({type: 'translation_result', session_id: 's2', utterance_index: i,
                        text_asr: text});
        }
        const answers = events.filter((e) => e.kind === 'answer')
                              .map((e) => [e.row, e.message.text_asr ?? e.message.code]);
        return {resume, fresh, resent, answers,
                after: ws.sent.filter((m) => m.type === 'utterance').map((m) => m.utterance_index)};
    }"""
    )
    assert out["resume"]["resume_token"] == "r1"
    assert out["resume"]["last_received_index"] == 0
    assert "resume_token" not in out["fresh"]
    assert out["resent"] == [["s2", 0], ["s2", 1], ["s2", 2]]  # rows 1, 2, 3 renumbered
    assert out["after"] == [0, 1, 2, 3]  # no node yet, just after a reconnect: sent again
    assert sorted(out["answers"]) == [[0, "zero"], [1, "one"], [2, "two"], [3, "three"]]


def test_peer_text_is_shown_as_text_never_as_html(page: Any) -> None:
    out = page.evaluate(
        """async () => {
        const {CaptionList} = await import('./captions.js');
        const list = document.createElement('ol');
        const c = new CaptionList(list, document.createElement('p'));
        const evil = '<img src=x onerror="window.pwned=1">';
        c.pending(0);
        c.final(0, {type: 'translation_result', text_asr: evil, text_translated: evil});
        c.room({type: 'translation_result', speaker_display_name: evil, text_asr: evil,
                text_translated: evil, tgt_lang: evil});
        c.room({type: 'error', code: evil, message: evil, room_code: '123456'});
        return {imgs: list.querySelectorAll('img').length, text: list.textContent,
                states: Array.from(list.children).map((e) => e.dataset.testid)};
    }"""
    )
    assert out["imgs"] == 0
    assert '<img src=x onerror="window.pwned=1">' in out["text"]
    assert out["states"] == ["caption-final", "caption-room", "caption-room"]


def test_the_page_cuts_three_sentences_with_pauses_into_three_utterances(page: Any) -> None:
    parts = [np.zeros(16000, np.float32)]
    for name in ("weather.wav", "report.wav", "market.wav"):
        with wave.open(str(SPEECH / name), "rb") as w:
            assert w.getframerate() == 16000
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        parts += [pcm, np.zeros(24000, np.float32)]
    audio = base64.b64encode(np.concatenate(parts).astype("<f4").tobytes()).decode()
    cuts = page.evaluate(
        """async (b64) => {
        const {EnergyVad, UtteranceCutter} = await import('./cutter.js');
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const samples = new Float32Array(bytes.buffer);
        const vad = new EnergyVad();
        const cutter = new UtteranceCutter((w) => vad.probability(w));
        const cuts = [];
        for (let i = 0; i < samples.length; i += 512) {   // 32 ms blocks, as the worklet posts
            for (const c of cutter.feed(samples.subarray(i, i + 512))) {
                cuts.push([c.reason, c.audio.length / 16000]);
            }
        }
        const noise = new Float32Array(16000 * 5).map(() => (Math.random() - 0.5) * 0.002);
        const fromNoise = new UtteranceCutter((w) => vad.probability(w)).feed(noise).length;
        return {cuts, fromNoise};
    }""",
        audio,
    )
    assert [reason for reason, _ in cuts["cuts"]] == ["end_of_speech"] * 3
    for (_, seconds), name in zip(cuts["cuts"], ("weather", "report", "market"), strict=True):
        assert 3.0 < seconds < 5.0, (name, seconds)
    assert cuts["fromNoise"] == 0


def test_client_web_serves_the_page_and_its_scheduler_and_prints_the_url() -> None:
    import subprocess
    import sys

    import httpx

    scheduler = "ws://10.0.0.7:5010/ws/session"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lingua_client", "--web", "--port", "0", "--scheduler", scheduler],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Lingua web client: http://127.0.0.1:"), line
        url = line.split()[3]
        page = httpx.get(url, timeout=5)
        assert page.status_code == 200
        assert 'data-testid="start"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert httpx.get(url + "app.js", timeout=5).headers["content-type"] == "text/javascript"
        assert httpx.get(url + "config.json", timeout=5).json() == {"scheduler": scheduler}
        assert httpx.get(url + "../pyproject.toml", timeout=5).status_code == 404
        assert httpx.get(url + "%2e%2e/web_server.py", timeout=5).status_code == 404
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_resume_resends_only_what_is_not_on_its_way_and_room_errors_stay_room_rows(
    page: Any,
) -> None:
    out = page.evaluate(
        """async () => {
        let {ws, events} = await openSession({resume_token: 'r1'}, 3);
        // another member's listening failed: about index 0 of *their* speaker, not ours
        ws.deliver({type: 'error', code: 'NO_AVAILABLE_NODE', message: 'x', session_id: 's1',
                    utterance_index: 0, speaker_session_id: 's-other'});
        ws.deliver({type: 'error', code: 'JOB_TIMEOUT', message: 'x', session_id: 's1',
                    utterance_index: 1, room_code: '123456'});
        ws.close();
        advance(1000);
        ws = T.sockets[1];
        ws.onopen();
        ws.deliver({type: 'session_init_ack', session_id: 's1', resume_token: 'r1',
                    resumed: true, last_delivered_index: 0});
        return {
            resent: ws.sent.filter((m) => m.type === 'utterance').map((m) => m.utterance_index),
            kinds: events.filter((e) => ['answer', 'room'].includes(e.kind)).map((e) => e.kind),
        };
    }"""
    )
    assert out["resent"] == [1, 2]  # 0's answer is on its way
    assert out["kinds"] == ["room", "room"]


def test_an_unreachable_scheduler_is_said_in_plain_words(page: Any) -> None:
    status = page.get_by_test_id("status")
    status.filter(has_text="Scheduler unreachable").wait_for(timeout=10000)
    assert "ws://127.0.0.1:9/ws/session" in (status.text_content() or "")
    assert status.get_attribute("data-state") == "error"


def test_old_rows_leave_the_page_so_a_long_session_stays_bounded(page: Any) -> None:
    count = page.evaluate(
        """async () => {
        const {CaptionList, MAX_ROWS} = await import('./captions.js');
        const list = document.createElement('ol');
        const c = new CaptionList(list, document.createElement('p'));
        for (let i = 0; i < MAX_ROWS + 20; i++) c.pending(i);
        return [list.childElementCount, MAX_ROWS, list.firstElementChild.dataset.index];
    }"""
    )
    assert count == [500, 500, "20"]


def test_the_capture_resampler_keeps_speech_and_stops_aliasing(page: Any) -> None:
    """The worklet's processor, run on the page with stand-ins for the worklet globals: a
    1 kHz tone at 48 kHz comes out at 16 kHz at full level; a 12 kHz tone, which would fold
    to 4 kHz, comes out at least 40 dB down."""
    levels = page.evaluate(
        """async () => {
        const blocks = [];
        globalThis.sampleRate = 48000;
        globalThis.AudioWorkletProcessor = class {
            constructor() { this.port = {postMessage: (b) => blocks.push(b)}; }
        };
        let Proc = null;
        globalThis.registerProcessor = (name, cls) => { Proc = cls; };
        await import('./capture-worklet.js?resampler-test');
        const rms = (hz) => {
            blocks.length = 0;
            const p = new Proc();
            const x = new Float32Array(48000).map((_, i) => Math.sin(2 * Math.PI * hz * i / 48000));
            for (let i = 0; i < x.length; i += 128) p.process([[x.subarray(i, i + 128)]]);
            const y = blocks.flatMap((b) => Array.from(b)).slice(512);  // past the start
            const power = y.reduce((s, v) => s + v * v, 0) / y.length;
            return {n: blocks.length * 512, rms: Math.sqrt(power)};
        };
        return {pass: rms(1000), alias: rms(12000)};
    }"""
    )
    assert levels["pass"]["n"] == 15872  # 31 whole blocks of the 16000 samples a second makes
    assert abs(levels["pass"]["rms"] - 0.7071) < 0.01
    assert levels["alias"]["rms"] < 0.7071 * 0.01


def test_partials_show_newest_revision_only_and_a_room_members_never_make_a_row(page: Any) -> None:
    got = page.evaluate(
        """async () => {
        const {ws, events} = await openSession({}, 1);
        const p = (revision, text, extra = {}) => ws.deliver({type: 'asr_partial',
          session_id: 's1', utterance_index: 0, text, stable_text: 'a', revision, ...extra});
        p(2, 'a b'); p(1, 'a old'); p(2, 'a dup'); p(3, 'a b c');
        p(9, 'hola', {speaker_session_id: 's-bo', room_code: '123456',
                      speaker_display_name: 'Bo'});
        ws.deliver({type: 'translation_result', session_id: 's1', utterance_index: 0,
                    text_asr: 'a b c d'});
        p(4, 'late');
        const {CaptionList} = await import('./captions.js');
        const line = document.createElement('p');
        const c = new CaptionList(document.createElement('ol'), line);
        c.showPartial({text: 'a b <i>c</i>', stable_text: 'a b'}, 'Bo');
        const shown = {who: line.querySelector('.who').textContent,
                       stable: line.querySelector('.stable').textContent,
                       tail: line.querySelector('.tail').textContent,
                       elements: line.querySelectorAll('i').length};
        c.showPartial(null);
        return {kinds: events.filter((e) => e.kind.endsWith('partial') || e.kind === 'room')
                  .map((e) => [e.kind, e.message.text]),
                shown, cleared: line.textContent};
    }"""
    )
    assert got["kinds"] == [
        ["partial", "a b"],
        ["partial", "a b c"],
        ["room_partial", "hola"],
    ]
    assert got["shown"] == {"who": "Bo:", "stable": "a b", "tail": " <i>c</i>", "elements": 0}
    assert got["cleared"] == ""
