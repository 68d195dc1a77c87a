"""Web client against the terminal client: end of speech to caption on screen, same clips,
same scheduler and node, same run.

Terminal: `lingua_client._files.run_files` (the `--file` path), one clip at a time, timed
from sending the utterance to its result. Browser: headless Chromium with the clips played
by its fake microphone, cut by the page's VAD, timed from the cut to the caption being in
the document (the row's `data-latency-ms`). Both start the clock when the utterance is
complete, so the VAD's hangover (500 ms, the same in both clients' microphone modes) is in
neither figure. Clips are spaced so that each answer arrives before the next cut: the
figures measure one utterance, not a queue. Both ask for text and speech.

Goal: browser p50 <= 1.1 x terminal p50 + 50 ms.

    python bench/bench_web.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import web_support as web  # noqa: E402
from e2e_support import SPEECH, one_node_cluster  # noqa: E402
from lingua_client import run_files  # noqa: E402


def clip_names() -> list[str]:
    return [item["file"] for item in json.loads((SPEECH / "sentences.json").read_text())]


def terminal(url: str, names: list[str]) -> list[float]:
    out = io.StringIO()
    code = asyncio.run(
        run_files(
            url,
            [SPEECH / n for n in names],
            src="en",
            tgt="en",
            as_json=True,
            out=out,
            sequential=True,
        )
    )
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 0, rows
    return [float(r["latency_ms"]) for r in rows]


def browser(url: str, names: list[str], work: Path, gap_s: float) -> list[float]:
    wav = web.capture_wav([SPEECH / n for n in names], work / "bench.wav", gap_s=gap_s, tail_s=30)
    with web.web_client(url) as page_url, web.chromium(wav) as b:
        page = b.new_page()
        web.start_page(page, web.page_address(page_url, src="en", tgt="en", duplex="1"))
        rows = web.wait_finals(page, len(names), timeout_s=60 + len(names) * (gap_s + 6))
    assert all(r["state"] == "done" for r in rows), rows
    return [float(r["latency_ms"]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each client")
    parser.add_argument("--gap-s", type=float, default=4.0, help="pause between clips")
    args = parser.parse_args()
    missing = web.browser_missing()
    if missing:
        raise SystemExit(f"bench_web: {missing}")
    names = clip_names()
    term: list[float] = []
    page_ms: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, one_node_cluster(Path(tmp)) as cluster:
        terminal(cluster.session_url, names[:1])  # warm the node's models
        for _ in range(args.rounds):  # interleaved, so drift on the machine hits both
            term += terminal(cluster.session_url, names)
            page_ms += browser(cluster.session_url, names, Path(tmp), args.gap_s)
    t50, w50 = statistics.median(term), statistics.median(page_ms)
    goal = 1.1 * t50 + 50
    print(f"utterances: {len(term)} per client ({len(names)} clips x {args.rounds} rounds)")
    print(f"terminal --file: p50 {t50:.0f} ms, max {max(term):.0f} ms")
    print(f"browser:         p50 {w50:.0f} ms, max {max(page_ms):.0f} ms")
    print(
        f"browser / terminal p50: x{w50 / t50:.2f} (+{w50 - t50:.0f} ms); "
        f"goal <= {goal:.0f} ms: {'met' if w50 <= goal else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
