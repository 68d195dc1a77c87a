"""The hub's store: model files under `store/models/<model_id>/<version>/` and their metadata in
SQLite.

A version is written into a staging folder, hashed by the hub itself as the bytes arrive (an
uploader's checksums are never trusted), moved into place with one rename and only then
recorded in the database, so an interrupted publish leaves nothing listed. Versions are
immutable: publishing an existing version is refused, and a deleted version leaves a tombstone
with its file hashes, so the same id and version can come back only with the same bytes (a
node that installed it before the delete must never meet different files under that name).
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
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from lingua_protocol import (
    HUB_ENGINES,
    HUB_ID_PATTERN,
    HUB_MODEL_KINDS,
    HubFileEntry,
    HubModelVersion,
    path_problem,
)

ID_RE = re.compile(HUB_ID_PATTERN)
KINDS = HUB_MODEL_KINDS
ENGINES = HUB_ENGINES

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
CREATE TABLE IF NOT EXISTS deleted_versions (
    model_id TEXT NOT NULL,
    version TEXT NOT NULL,
    files TEXT NOT NULL,
    deleted REAL NOT NULL,
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


def safe_relpath(raw: str) -> PurePosixPath:
    """A relative path inside a model version, or HubError 400 `INVALID_PATH`: the rules of
    `lingua_protocol._hub_manifest.path_problem` (no `..`, no absolute or drive paths, no
    backslashes or control characters, segments of at most 255 bytes, at most 1024 bytes)."""
    problem = path_problem(raw)
    if problem is not None:
        raise HubError(400, "INVALID_PATH", f"invalid file path {raw!r}: {problem}")
    return PurePosixPath(raw)


def check_id(value: str, what: str) -> str:
    if not ID_RE.fullmatch(value) or value in (".", ".."):  # fullmatch: no trailing newline
        raise HubError(400, "INVALID_ID", f"invalid {what} {value!r}")
    return value


class PathLayout:
    """The file paths of one upload so far: refuses a path sent twice, and a file whose name is
    also a folder of another file (`a` and `a/b`), before anything is written for it."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.folders: set[str] = set()

    def add(self, raw: str) -> PurePosixPath:
        rel = safe_relpath(raw)
        path = rel.as_posix()
        if path in self.files:
            raise HubError(400, "DUPLICATE_FILE", f"the file path {path!r} was sent twice")
        parents = [p.as_posix() for p in rel.parents if p.as_posix() != "."]
        if path in self.folders or any(p in self.files for p in parents):
            raise HubError(
                400, "PATH_CONFLICT", f"{path!r} is both a file and a folder in this upload"
            )
        self.files.add(path)
        self.folders.update(parents)
        return rel


class StagedFile:
    """A file being written into a staging folder, hashed as its bytes arrive."""

    def __init__(self, staging: Path, rel: PurePosixPath) -> None:
        self.rel = rel
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._out = dest.open("wb")
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, block: bytes) -> None:
        self._digest.update(block)
        self._out.write(block)
        self.size += len(block)

    def close(self) -> HubFileEntry:
        self._out.close()
        return HubFileEntry(
            path=self.rel.as_posix(), size=self.size, sha256=self._digest.hexdigest()
        )

    def discard(self) -> None:
        self._out.close()


def _file_list(files: list[HubFileEntry]) -> str:
    return json.dumps([f.model_dump() for f in sorted(files, key=lambda f: f.path)])


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
    def _row(row: sqlite3.Row) -> HubModelVersion:
        data = dict(row)
        data["languages"] = json.loads(data["languages"])
        data["files"] = json.loads(data["files"])
        data["created"] = float(data["created"])
        return HubModelVersion.model_validate(data)

    def search(
        self,
        kind: str | None = None,
        language: str | None = None,
        src: str | None = None,
        tgt: str | None = None,
    ) -> list[HubModelVersion]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM model_versions ORDER BY model_id, created").fetchall()
        out = []
        for row in rows:
            m = self._row(row)
            if kind and m.kind != kind:
                continue
            langs = set(m.languages) | {m.src_lang, m.tgt_lang}
            if language and language not in langs:
                continue
            if src and m.src_lang != src and src not in m.languages:
                continue
            if tgt and m.tgt_lang != tgt and tgt not in m.languages:
                continue
            out.append(m)
        return out

    def count(self) -> int:
        with self._db() as db:
            return int(db.execute("SELECT COUNT(*) FROM model_versions").fetchone()[0])

    def versions(self, model_id: str) -> list[HubModelVersion]:
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM model_versions WHERE model_id = ? ORDER BY created", (model_id,)
            ).fetchall()
        return [self._row(r) for r in rows]

    def get(self, model_id: str, version: str) -> HubModelVersion:
        with self._db() as db:
            row = db.execute(
                "SELECT * FROM model_versions WHERE model_id = ? AND version = ?",
                (model_id, version),
            ).fetchone()
        if row is None:
            raise HubError(404, "MODEL_NOT_AVAILABLE", f"{model_id}@{version} is not in the hub")
        return self._row(row)

    def file_path(self, model_id: str, version: str, raw_path: str) -> tuple[Path, HubFileEntry]:
        """The on-disk file for a listed file of a listed version; nothing else is served."""
        meta = self.get(check_id(model_id, "model id"), check_id(version, "version"))
        rel = safe_relpath(raw_path)
        entry = next((f for f in meta.files if f.path == rel.as_posix()), None)
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
        staging: Path, rel: PurePosixPath, source: BinaryIO, limit: int, used: int = 0
    ) -> HubFileEntry:
        """Copy `source` into the staging folder at `rel` (already checked with a
        `PathLayout`), hashing it; 413 once `used` plus its size passes `limit`."""
        staged = StagedFile(staging, rel)
        try:
            while block := source.read(1 << 20):
                if used + staged.size + len(block) > limit:
                    raise HubError(413, "UPLOAD_TOO_LARGE", f"upload exceeds {limit} bytes")
                staged.write(block)
        except BaseException:
            staged.discard()
            raise
        return staged.close()

    @staticmethod
    def check_meta(meta: dict[str, Any]) -> dict[str, Any]:
        """The version's metadata as stored, or HubError 400: checked before any file of the
        upload is moved into place."""
        for key in ("model_id", "version", "kind", "engine"):
            if not isinstance(meta.get(key), str):
                raise HubError(400, "INVALID_META", f"meta.{key} must be a string")
        model_id = check_id(meta["model_id"], "model id")
        version = check_id(meta["version"], "version")
        kind = meta["kind"]
        if kind not in KINDS:
            raise HubError(400, "INVALID_KIND", f"kind must be one of {KINDS}")
        engine = meta["engine"]
        if engine not in ENGINES:
            raise HubError(400, "INVALID_ENGINE", f"engine must be one of {ENGINES}")
        languages = meta.get("languages") or []
        if not isinstance(languages, list) or not all(isinstance(x, str) for x in languages):
            raise HubError(400, "INVALID_META", "meta.languages must be a list of strings")
        if kind == "nmt" and not (meta.get("src_lang") and meta.get("tgt_lang")) and not languages:
            raise HubError(400, "MISSING_LANGUAGES", "an nmt model needs src_lang and tgt_lang")
        optional = {}
        for key in ("src_lang", "tgt_lang", "dialect", "license"):
            value = meta.get(key)
            if value is not None and not isinstance(value, str):
                raise HubError(400, "INVALID_META", f"meta.{key} must be a string or null")
            optional[key] = value
        return {
            "model_id": model_id,
            "version": version,
            "kind": kind,
            "engine": engine,
            "languages": languages,
            **optional,
        }

    def commit(
        self, staging: Path, meta: dict[str, Any], files: list[HubFileEntry]
    ) -> HubModelVersion:
        checked = self.check_meta(meta)
        model_id, version = checked["model_id"], checked["version"]
        if not files:
            raise HubError(400, "NO_FILES", "a model version needs at least one file")
        layout = PathLayout()
        for f in files:
            layout.add(f.path)
        record = HubModelVersion.model_validate(
            {
                **checked,
                "files": [f.model_dump() for f in sorted(files, key=lambda f: f.path)],
                "total_size": sum(f.size for f in files),
                "created": time.time(),
            }
        )
        file_list = _file_list(record.files)
        target = self.models / model_id / version
        with self._lock:
            with self._db() as db:
                exists = db.execute(
                    "SELECT 1 FROM model_versions WHERE model_id = ? AND version = ?",
                    (model_id, version),
                ).fetchone()
                tombstone = db.execute(
                    "SELECT files FROM deleted_versions WHERE model_id = ? AND version = ?",
                    (model_id, version),
                ).fetchone()
            if exists or target.exists():
                raise HubError(
                    409, "VERSION_EXISTS", f"{model_id}@{version} exists; versions are immutable"
                )
            if tombstone is not None and tombstone["files"] != file_list:
                raise HubError(
                    409,
                    "VERSION_DELETED",
                    f"{model_id}@{version} was deleted; it can come back only with the same "
                    "files, publish a new version instead",
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, target)
            data = record.model_dump()
            with self._db() as db:
                db.execute(
                    "INSERT INTO model_versions VALUES (:model_id, :version, :kind, :engine,"
                    " :src_lang, :tgt_lang, :languages, :dialect, :license, :files,"
                    " :total_size, :created)",
                    dict(data, languages=json.dumps(record.languages), files=file_list),
                )
        return record

    def abort(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def publish_dir(self, folder: Path, meta: dict[str, Any]) -> HubModelVersion:
        """Publish every regular file under `folder` (the operator's `hub publish`)."""
        staging = self.begin()
        try:
            layout = PathLayout()
            files = []
            for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
                rel = layout.add(path.relative_to(folder).as_posix())
                with path.open("rb") as f:
                    files.append(self.write_file(staging, rel, f, 2**63))
            return self.commit(staging, meta, files)
        finally:
            self.abort(staging)

    def delete(self, model_id: str, version: str) -> None:
        """Remove a version; its file list stays as a tombstone (see the module docstring)."""
        record = self.get(model_id, version)
        with self._lock:
            with self._db() as db:
                db.execute(
                    "DELETE FROM model_versions WHERE model_id = ? AND version = ?",
                    (model_id, version),
                )
                db.execute(
                    "INSERT OR REPLACE INTO deleted_versions VALUES (?, ?, ?, ?)",
                    (model_id, version, _file_list(record.files), time.time()),
                )
            shutil.rmtree(self.models / model_id / version, ignore_errors=True)

    def verify(self) -> list[str]:
        """Recheck every stored file against its recorded size and SHA256; list the problems."""
        problems = []
        for m in self.search():
            for f in m.files:
                path = self.models / m.model_id / m.version / f.path
                if not path.is_file():
                    problems.append(f"{m.model_id}@{m.version}/{f.path}: missing")
                    continue
                digest = hashlib.sha256()
                with path.open("rb") as fh:
                    while block := fh.read(1 << 20):
                        digest.update(block)
                if path.stat().st_size != f.size or digest.hexdigest() != f.sha256:
                    problems.append(
                        f"{m.model_id}@{m.version}/{f.path}: corrupted "
                        f"(sha256 {digest.hexdigest()}, recorded {f.sha256})"
                    )
        return problems

    def sweep_staging(self) -> None:
        """Leftovers of interrupted uploads from an earlier run are never listed; remove them."""
        for leftover in self.staging.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
