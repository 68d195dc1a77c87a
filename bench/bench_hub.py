"""Hub download throughput of a 145 MB model file over loopback, against reading the same
file from disk in the same run (both from the page cache, after one warm-up read).

    python bench/bench_hub.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from lingua_model_hub.catalog import Catalog
from lingua_model_hub.process import HubProcess

CHUNK = 1 << 20


def disk_read(path: Path) -> float:
    t0 = time.perf_counter()
    with path.open("rb") as f:
        while f.read(CHUNK):
            pass
    return time.perf_counter() - t0


def hub_read(url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    with httpx.stream("GET", url, timeout=120) as r:
        r.raise_for_status()
        for block in r.iter_raw(CHUNK):
            n += len(block)
    return time.perf_counter() - t0, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from lingua_node.embedded import build_whisper_base

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = build_whisper_base(work / "build")
        catalog = Catalog(work / "store")
        catalog.publish_dir(
            model,
            {
                "model_id": "whisper-base",
                "version": "1",
                "kind": "asr",
                "engine": "faster-whisper",
                "languages": ["en"],
            },
        )
        stored = work / "store" / "models" / "whisper-base" / "1" / "model.bin"
        size = stored.stat().st_size
        with HubProcess(work / "store") as hub:
            url = f"{hub.url}/api/v1/models/whisper-base/1/files/model.bin"
            disk_read(stored)
            hub_read(url)  # warm-up
            disk = [disk_read(stored) for _ in range(args.repeat)]
            over = [hub_read(url) for _ in range(args.repeat)]
            assert all(n == size for _, n in over)
            ranged = httpx.get(url, headers={"Range": "bytes=-1048576"}).content
            assert (
                hashlib.sha256(ranged).hexdigest()
                == hashlib.sha256(stored.read_bytes()[-1048576:]).hexdigest()
            )
    mb = size / 1e6
    d = mb / statistics.median(disk)
    h = mb / statistics.median(t for t, _ in over)
    print(f"hub bench: {size:,} byte file, median of {args.repeat}")
    print(f"disk read (page cache): {d:8.0f} MB/s")
    print(f"hub over loopback:      {h:8.0f} MB/s  = {h / d * 100:.0f}% of disk (target >= 50%)")


if __name__ == "__main__":
    main()
