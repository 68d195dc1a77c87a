"""The hub's store: model files under `store/models/<model_id>/<version>/` and their metadata in
SQLite.

A version is written into a staging folder, hashed by the hub itself as the bytes arrive (an
uploader's checksums are never trusted), moved into place with one rename and only then
recorded in the database, so an interrupted publish leaves nothing listed. Versions are
immutable: publishing an existing version is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
KINDS = ("asr", "nmt", "tts", "vad")
ENGINES = ("faster-whisper", "transformers", "ctranslate2", "piper", "espeak", "onnx")

SCHEMA = """
CREATE TABLE IF NOT EXISTS model_versions (
    model_id TEXT NOT NULL,
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    engine TEXT NOT NULL,
    src_lang TEXT,
    tgt_lang TEXT,
    languages TEXT NOT NULL,
    dialect TEXT,
    license TEXT,
    files TEXT NOT NULL,
    total_size INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (model_id, version)
);
"""


class HubError(Exception):
    """An error with the HTTP status and stable code the API answers with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class FileEntry:
    path: str
    size: int
    sha256: str


def safe_relpath(raw: str) -> PurePosixPath:
    """A relative path inside a model version, or HubError: no `..`, no absolute or drive
    paths, no backslashes, no empty or dot segments, no control characters."""
    if not raw or "\\" in raw or "\x00" in raw or any(ord(c) < 32 for c in raw):
        raise HubError(400, "INVALID_PATH", f"invalid file path {raw!r}")
    rel = PurePosixPath(raw)
    if rel.is_absolute() or raw.startswith("/") or ":" in rel.parts[0]:
        raise HubError(400, "INVALID_PATH", f"absolute paths are not allowed: {raw!r}")
    if any(part in ("", ".", "..") for part in raw.split("/")):
        raise HubError(400, "INVALID_PATH", f"path segments '.', '..' are not allowed: {raw!r}")
    return rel


def check_id(value: str, what: str) -> str:
    if not ID_RE.match(value) or value in (".", ".."):
        raise HubError(400, "INVALID_ID", f"invalid {what} {value!r}")
    return value


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.models = self.root / "models"
        self.staging = self.root / ".staging"
        self.models.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "catalog.sqlite3"
        self._lock = threading.Lock()
        with self._db() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    # --- reading -----------------------------------------------------------------------------

    @staticmethod
    def _row(row: sqlite3.Row) -> dict[str, Any]:
        data = dict(row)
        data["languages"] = json.loads(data["languages"])
        data["files"] = json.loads(data["files"])
        return data

    def search(
        self,
        kind: str | None = None,
        language: str | None = None,
        src: str | None = None,
        tgt: str | None = None,
    ) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM model_versions ORDER BY model_id, created").fetchall()
        out = []
        for row in rows:
            m = self._row(row)
            if kind and m["kind"] != kind:
                continue
            langs = set(m["languages"]) | {m["src_lang"], m["tgt_lang"]}
            if language and language not in langs:
                continue
            if src and m["src_lang"] != src and src not in m["languages"]:
                continue
            if tgt and m["tgt_lang"] != tgt and tgt not in m["languages"]:
                continue
            out.append(m)
        return out

    def versions(self, model_id: str) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM model_versions WHERE model_id = ? ORDER BY created", (model_id,)
            ).fetchall()
        return [self._row(r) for r in rows]

    def get(self, model_id: str, version: str) -> dict[str, Any]:
        with self._db() as db:
            row = db.execute(
                "SELECT * FROM model_versions WHERE model_id = ? AND version = ?",
                (model_id, version),
            ).fetchone()
        if row is None:
            raise HubError(404, "MODEL_NOT_AVAILABLE", f"{model_id}@{version} is not in the hub")
        return self._row(row)

    def file_path(self, model_id: str, version: str, raw_path: str) -> tuple[Path, dict[str, Any]]:
        """The on-disk file for a listed file of a listed version; nothing else is served."""
        meta = self.get(check_id(model_id, "model id"), check_id(version, "version"))
        rel = safe_relpath(raw_path)
        entry = next((f for f in meta["files"] if f["path"] == rel.as_posix()), None)
        if entry is None:
            raise HubError(404, "FILE_NOT_FOUND", f"{model_id}@{version} has no file {raw_path!r}")
        base = (self.models / model_id / version).resolve()
        path = base / rel
        # symlinks (planted in the store by anyone) must not lead outside the version folder
        if path.is_symlink() or not path.resolve().is_relative_to(base):
            raise HubError(404, "FILE_NOT_FOUND", f"{raw_path!r} is not a regular stored file")
        return path, entry

    # --- writing -----------------------------------------------------------------------------

    def begin(self) -> Path:
        folder = self.staging / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    @staticmethod
    def write_file(
        staging: Path, raw_path: str, source: BinaryIO, limit: int, used: int = 0
    ) -> FileEntry:
        rel = safe_relpath(raw_path)
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with dest.open("wb") as out:
            while block := source.read(1 << 20):
                size += len(block)
                if used + size > limit:
                    raise HubError(413, "UPLOAD_TOO_LARGE", f"upload exceeds {limit} bytes")
                digest.update(block)
                out.write(block)
        return FileEntry(rel.as_posix(), size, digest.hexdigest())

    def commit(self, staging: Path, meta: dict[str, Any], files: list[FileEntry]) -> dict[str, Any]:
        model_id = check_id(str(meta["model_id"]), "model id")
        version = check_id(str(meta["version"]), "version")
        kind = str(meta.get("kind", ""))
        if kind not in KINDS:
            raise HubError(400, "INVALID_KIND", f"kind must be one of {KINDS}")
        engine = str(meta.get("engine") or "")
        if engine not in ENGINES:
            raise HubError(400, "INVALID_ENGINE", f"engine must be one of {ENGINES}")
        if not files:
            raise HubError(400, "NO_FILES", "a model version needs at least one file")
        if len({f.path for f in files}) != len(files):
            raise HubError(400, "DUPLICATE_FILE", "the same file path was sent twice")
        languages = [str(x) for x in meta.get("languages") or []]
        if kind == "nmt" and not (meta.get("src_lang") and meta.get("tgt_lang")) and not languages:
            raise HubError(400, "MISSING_LANGUAGES", "an nmt model needs src_lang and tgt_lang")
        record = {
            "model_id": model_id,
            "version": version,
            "kind": kind,
            "engine": engine,
            "src_lang": meta.get("src_lang"),
            "tgt_lang": meta.get("tgt_lang"),
            "languages": languages,
            "dialect": meta.get("dialect"),
            "license": meta.get("license"),
            "files": [f.__dict__ for f in sorted(files, key=lambda f: f.path)],
            "total_size": sum(f.size for f in files),
            "created": time.time(),
        }
        target = self.models / model_id / version
        with self._lock:
            with self._db() as db:
                exists = db.execute(
                    "SELECT 1 FROM model_versions WHERE model_id = ? AND version = ?",
                    (model_id, version),
                ).fetchone()
            if exists or target.exists():
                raise HubError(
                    409, "VERSION_EXISTS", f"{model_id}@{version} exists; versions are immutable"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, target)
            with self._db() as db:
                db.execute(
                    "INSERT INTO model_versions VALUES (:model_id, :version, :kind, :engine,"
                    " :src_lang, :tgt_lang, :languages, :dialect, :license, :files,"
                    " :total_size, :created)",
                    dict(
                        record, languages=json.dumps(languages), files=json.dumps(record["files"])
                    ),
                )
        return record

    def abort(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def publish_dir(self, folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
        """Publish every regular file under `folder` (used by the CLI and import-bundled)."""
        staging = self.begin()
        try:
            files = []
            for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
                with path.open("rb") as f:
                    files.append(
                        self.write_file(staging, path.relative_to(folder).as_posix(), f, 2**63)
                    )
            return self.commit(staging, meta, files)
        finally:
            self.abort(staging)

    def delete(self, model_id: str, version: str) -> None:
        self.get(model_id, version)
        with self._lock:
            with self._db() as db:
                db.execute(
                    "DELETE FROM model_versions WHERE model_id = ? AND version = ?",
                    (model_id, version),
                )
            shutil.rmtree(self.models / model_id / version, ignore_errors=True)

    def verify(self) -> list[str]:
        """Recheck every stored file against its recorded size and SHA256; list the problems."""
        problems = []
        for m in self.search():
            for f in m["files"]:
                path = self.models / m["model_id"] / m["version"] / f["path"]
                if not path.is_file():
                    problems.append(f"{m['model_id']}@{m['version']}/{f['path']}: missing")
                    continue
                digest = hashlib.sha256()
                with path.open("rb") as fh:
                    while block := fh.read(1 << 20):
                        digest.update(block)
                if path.stat().st_size != f["size"] or digest.hexdigest() != f["sha256"]:
                    problems.append(
                        f"{m['model_id']}@{m['version']}/{f['path']}: corrupted "
                        f"(sha256 {digest.hexdigest()}, recorded {f['sha256']})"
                    )
        return problems

    def sweep_staging(self) -> None:
        """Leftovers of interrupted uploads from an earlier run are never listed; remove them."""
        for leftover in self.staging.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
