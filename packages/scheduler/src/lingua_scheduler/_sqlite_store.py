"""Node credentials kept across restarts in a small SQLite file (`state_path`).

Bindings are read once at start-up into memory, so a lookup never touches the disk; a new
binding is written by one background thread, in order, so the event loop never waits for a
commit. A binding whose write was lost in a crash is re-made the next time the node registers
(it presents the same secret; the id is then new again, and trust on first use binds it).
"""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS node_credentials (
    node_id TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    bound_at REAL NOT NULL
)
"""


class SqliteCredentialStore:
    """A `CredentialStore` backed by SQLite; `close()` waits for pending writes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._digests: dict[str, str] = dict(
            self._db.execute("SELECT node_id, digest FROM node_credentials").fetchall()
        )
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lingua-state")

    def lookup(self, node_id: str) -> str | None:
        return self._digests.get(node_id)

    def bind(self, node_id: str, digest: str) -> None:
        if node_id in self._digests:
            return
        self._digests[node_id] = digest
        self._writer.submit(self._write, node_id, digest, time.time())

    def count(self) -> int:
        return len(self._digests)

    def _write(self, node_id: str, digest: str, at: float) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO node_credentials (node_id, digest, bound_at) VALUES (?, ?, ?)",
            (node_id, digest, at),
        )

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._db.close()
