"""Run every benchmark and write bench/RESULTS.md with the machine and all figures.

python bench/run_all.py                 # everything, RESULTS.md written anew
python bench/run_all.py --only Web      # the sections whose title contains "Web", replaced in
                                        # place; the others keep their figures and dates
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
BENCHES = [
    ("Protocol: parsing a job_assign with 3 s of audio", "bench_protocol.py", []),
    ("Scheduler: overhead against a bare websockets relay", "bench_scheduler.py", []),
    (
        "Scheduler, unpinned: the same at 100 sessions with both processes sharing both cores",
        "bench_scheduler.py",
        ["--no-pin", "--sessions", "100", "--paced-sessions", "100", "--idle-sessions", "0"],
    ),
    (
        "Scheduler: resource budget (RSS at full flow-control windows, /health under attack)",
        "bench_resources.py",
        [],
    ),
    ("Model hub: download throughput against disk", "bench_hub.py", []),
    ("Node: per-stage timings, overhead, end-to-end latency", "bench_node.py", []),
    ("Node: streaming recognition against whole-utterance mode", "bench_streaming.py", []),
    (
        "Web client: end of speech to caption in Chromium against the terminal --file path",
        "bench_web.py",
        [],
    ),
    (
        "Terminal client: end of speech to caption and to first sound, half and full duplex",
        "bench_client.py",
        [],
    ),
]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {psutil.cpu_count(logical=True)} logical cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, no GPU used; "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def previous_sections() -> dict[str, str]:
    """The sections of the current RESULTS.md by title, to keep those not re-run."""
    path = HERE / "RESULTS.md"
    if not path.is_file():
        return {}
    found: dict[str, str] = {}
    for chunk in path.read_text().split("\n## ")[1:]:
        title = chunk.split("\n", 1)[0]
        found[title] = f"## {chunk.rstrip()}\n"
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="re-run sections by title")
    args = parser.parse_args()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sections = [
        "# Benchmark results\n",
        f"Written by `python bench/run_all.py` on {stamp}"
        + (" (sections not re-run keep their earlier figures)" if args.only else "")
        + ".\n",
        f"Machine: {machine()}.\n",
    ]
    kept = previous_sections() if args.only else {}
    failed = 0
    for title, script, extra in BENCHES:
        if args.only and not any(word in title for word in args.only):
            if title in kept:
                sections.append(kept[title])
            continue
        print(f"== {title}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(HERE / script), *extra],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        took = time.perf_counter() - t0
        output = proc.stdout.strip()
        print(output)
        if proc.returncode:
            failed += 1
            output += f"\n\n(exit {proc.returncode})\n{proc.stderr[-2000:]}"
        sections.append(f"## {title}\n\n`bench/{script}` ({took:.0f} s)\n\n```\n{output}\n```\n")
    (HERE / "RESULTS.md").write_text("\n".join(sections))
    print(f"wrote {HERE / 'RESULTS.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
