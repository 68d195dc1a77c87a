"""`hatch run demo`: the whole of Lingua on this machine, on its built-in models.

Starts a model hub, a scheduler and one node (building the node's default models from
packages on the first run), sends the project's sample utterances (English, and Spanish for
speech translation into English) through a client session, prints each transcript,
translation and latency, writes the translated speech to a folder, and shuts everything down.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console

from ._files import run_files
from ._local_cluster import LocalCluster

SAMPLES = Path("tests") / "data" / "speech"
"""The committed sample speech, relative to the project root where `hatch run demo` runs."""


def sample_files(samples: Path) -> list[Path]:
    english = json.loads((samples / "sentences.json").read_text())
    foreign = json.loads((samples / "foreign.json").read_text())
    return [samples / i["file"] for i in english[:4]] + [samples / i["file"] for i in foreign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lingua-demo", description=__doc__)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("lingua-demo-output"),
        help="where the translated speech is written",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(".lingua-demo"),
        help="logs and state of the demo processes",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=Path(".lingua-demo-models"),
        help="the node's models (its embedded defaults are built there on the first run, "
        "from Python packages: Whisper base, Piper en_US-joe-medium, Silero VAD)",
    )
    parser.add_argument(
        "--samples", type=Path, default=SAMPLES, help="folder of the sample speech and its texts"
    )
    args = parser.parse_args(argv)
    console = Console()
    started = time.perf_counter()
    if not (args.samples / "sentences.json").is_file():
        console.print(f"[red]no sample speech in {args.samples}:[/] run from the project root")
        return 2

    # The demo runs the scheduler, node and hub as processes (`python -m lingua_node`, ...):
    # the client package imports none of them (they come with the `demo` extra).
    shutil.rmtree(args.work, ignore_errors=True)
    cluster = LocalCluster(args.work, models_dir=args.models_dir)
    try:
        with console.status(
            "starting hub, scheduler and node (the node builds its default models on its "
            "first run) ..."
        ):
            cluster.start_hub()
            cluster.start_scheduler()
            node = cluster.start_node("node", max_jobs=1)
            node_id = cluster.wait_node_ready(node)
        console.print(
            f"[green]✓[/] hub {cluster.hub_url}, scheduler {cluster.session_url}, "
            f"node {node_id} ready"
        )
        files = sample_files(args.samples)
        console.print(f"sending {len(files)} utterances (English, and Spanish -> English) ...\n")
        out = io.StringIO()
        code = asyncio.run(
            run_files(
                cluster.session_url,
                files,
                src="auto",
                tgt="en",
                as_json=True,
                save_tts=args.out,
                out=out,
                sequential=True,
            )
        )
        for line in out.getvalue().splitlines():
            row = json.loads(line)
            if "error" in row:
                console.print(f"[red][{row['utterance_index']}] {row['error']}: {row['message']}")
                continue
            st = row.get("service_timings") or {}
            console.print(f"[bold][{row['utterance_index']}][/] {row['file']}")
            console.print(f"    heard:      {row['text_asr']}")
            console.print(f"    translated: [cyan]{row['text_translated']}[/]")
            console.print(
                f"    latency {row['latency_ms']:.0f} ms (asr {st.get('asr_ms', 0):.0f}, "
                f"translation {st.get('nmt_ms', 0):.0f}, tts {st.get('tts_ms', 0):.0f} ms)"
                f"  speech: {row.get('tts_file', '-')}"
            )
        console.print(f"\ntranslated speech written to {args.out.resolve()}/")
    except Exception as exc:  # noqa: BLE001
        # whatever failed, its cause is usually in a process's log: show the logs, not just
        # a traceback
        console.print(f"[red]demo failed:[/] {exc}")
        for proc in cluster.procs:
            console.print(f"--- {proc.name} log ({proc.log}) ---\n{proc.tail(15)}")
        return 1
    finally:
        with console.status("shutting down ..."):
            cluster.stop()
    console.print(f"done in {time.perf_counter() - started:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
