"""Hub download throughput of a 145 MB model file over loopback, against reading the same
file from disk in the same run.

"Disk" is measured cold (after dropping the page cache, when this runs as root) and warm (from
the page cache). The hub is measured with a minimal socket client that does nothing but read
(so the figure is the hub's, not a client's), and with httpx, which the node's installer uses.

    python bench/bench_hub.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from lingua_model_hub import Catalog, HubProcess

CHUNK = 4 << 20


def disk_read(path: Path) -> float:
    t0 = time.perf_counter()
    with path.open("rb") as f:
        while f.read(CHUNK):
            pass
    return time.perf_counter() - t0


def drop_page_cache() -> bool:
    os.sync()
    with contextlib.suppress(OSError), open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
        return True
    return False


def raw_read(url: str) -> tuple[float, int]:
    """GET over a plain socket: parse the status and headers, then read the body into a
    reused buffer. The least a client can do, so the hub's own speed shows."""
    parts = urlsplit(url)
    t0 = time.perf_counter()
    with socket.create_connection((parts.hostname, parts.port)) as s:
        s.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(65536)
        header, _, body = head.partition(b"\r\n\r\n")
        assert header.startswith(b"HTTP/1.1 200")
        n = len(body)
        buf = bytearray(CHUNK)
        while got := s.recv_into(buf):
            n += got
    return time.perf_counter() - t0, n


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
    from lingua_node import build_whisper_base

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
            cold_disk, cold_hub = [], []
            for _ in range(args.repeat):
                if drop_page_cache():
                    cold_disk.append(disk_read(stored))
                if drop_page_cache():
                    cold_hub.append(raw_read(url)[0])
            disk_read(stored)
            hub_read(url)  # warm-up
            disk = [disk_read(stored) for _ in range(args.repeat)]
            raw = [raw_read(url) for _ in range(args.repeat)]
            over = [hub_read(url) for _ in range(args.repeat)]
            assert all(n == size for _, n in over)
            assert all(n == size for _, n in raw)
            ranged = httpx.get(url, headers={"Range": "bytes=-1048576"}).content
            assert (
                hashlib.sha256(ranged).hexdigest()
                == hashlib.sha256(stored.read_bytes()[-1048576:]).hexdigest()
            )
    mb = size / 1e6

    def rate(times: list[float]) -> float:
        return mb / statistics.median(times)

    warm_disk = rate(disk)
    warm_hub = rate([t for t, _ in raw])
    via_httpx = rate([t for t, _ in over])
    print(f"hub bench: {size:,} byte file, median of {args.repeat}; MB/s")
    if cold_disk and cold_hub:
        d, h = rate(cold_disk), rate(cold_hub)
        print(
            f"cold (page cache dropped): disk {d:7.0f}   hub {h:7.0f}  = {h / d * 100:.0f}% "
            "of disk (target >= 50%)"
        )
    else:
        print("cold figures need root (to drop the page cache): skipped")
    print(
        f"warm (page cache):         disk {warm_disk:7.0f}   hub {warm_hub:7.0f}  = "
        f"{warm_hub / warm_disk * 100:.0f}% of a memory copy"
    )
    print(
        f"hub through httpx (the node's installer): {via_httpx:.0f} MB/s = "
        f"{size / 1e6 / via_httpx:.2f} s for this file"
    )


if __name__ == "__main__":
    main()
