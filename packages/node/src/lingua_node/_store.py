"""The node's model store: a folder of models with a manifest, filled from the model hub.

Installing downloads every file of a model version into a staging folder, resuming partial
files with HTTP Range, checks each file's SHA256 against the hub's manifest, and only then
moves the folder into place with one rename. A mismatch is MODEL_VERIFY_FAILED and leaves
nothing installed (the staging folder is removed, so the next try starts clean).

The hub's answers are parsed with the manifest models of `lingua_protocol._hub_manifest`, the
same the hub writes them with: a manifest with an unsafe path or a malformed hash is refused
(MODEL_VERIFY_FAILED) before anything is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import httpx
from lingua_protocol import ErrorCode, HubModelInfo, HubModelVersion, ProtocolError
from pydantic import BaseModel, ValidationError

from ._backends.nmt import MANIFEST
from ._embedded import sha256_file

INDEX = "installed.json"
HubAnswer = TypeVar("HubAnswer", bound=BaseModel)
Progress = Callable[[str, int, int], None]  # (file, bytes done, bytes total)


class ModelStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    # --- the local manifest ------------------------------------------------------------------

    def _index(self) -> dict[str, Any]:
        path = self.root / INDEX
        return json.loads(path.read_text()) if path.is_file() else {}

    def _write_index(self, index: dict[str, Any]) -> None:
        tmp = self.root / f".{INDEX}.tmp"
        tmp.write_text(json.dumps(index, indent=2, sort_keys=True))
        os.replace(tmp, self.root / INDEX)

    def installed(self, kind: str | None = None) -> list[dict[str, Any]]:
        entries = [dict(v, path=str(self.root / v["dir"])) for v in self._index().values()]
        return [e for e in entries if kind is None or e.get("kind") == kind]

    def remove(self, model_id: str) -> bool:
        index = self._index()
        entry = index.pop(model_id, None)
        if entry is None:
            return False
        self._write_index(index)
        shutil.rmtree(self.root / entry["dir"], ignore_errors=True)
        return True

    # --- installing from a hub ---------------------------------------------------------------

    def install(
        self,
        hub: str,
        model_id: str,
        version: str | None = None,
        *,
        progress: Progress | None = None,
        client: httpx.Client | None = None,
    ) -> dict[str, Any]:
        own = client is None
        http = client or httpx.Client(base_url=hub, timeout=httpx.Timeout(30.0, read=120.0))
        try:
            if version is None:
                info = _parse(HubModelInfo, http.get(f"/api/v1/models/{model_id}"))
                versions = [v.version for v in info.versions]
                if not versions:
                    raise ProtocolError(ErrorCode.MODEL_NOT_AVAILABLE, f"{model_id}: no versions")
                version = versions[-1]
            manifest = _parse(
                HubModelVersion, http.get(f"/api/v1/models/{model_id}/{version}/manifest")
            )
            return self._install(http, manifest, progress)
        finally:
            if own:
                http.close()

    def _install(
        self, http: httpx.Client, manifest: HubModelVersion, progress: Progress | None
    ) -> dict[str, Any]:
        model_id, version = manifest.model_id, manifest.version
        dirname = f"{model_id}@{version}"
        staging = self.root / ".staging" / dirname
        staging.mkdir(parents=True, exist_ok=True)
        try:
            for f in manifest.files:
                rel = PurePosixPath(f.path)  # checked safe by the manifest model
                dest = staging / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                url = f"/api/v1/models/{model_id}/{version}/files/{rel.as_posix()}"
                _download(http, url, dest, f.size, progress)
                digest = sha256_file(dest)
                if digest != f.sha256:
                    raise ProtocolError(
                        ErrorCode.MODEL_VERIFY_FAILED,
                        f"{model_id}@{version}: {rel} has sha256 {digest}, "
                        f"the hub's manifest says {f.sha256}",
                    )
        except ProtocolError as exc:
            if exc.code == ErrorCode.MODEL_VERIFY_FAILED:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        meta = _model_meta(manifest, staging)
        (staging / MANIFEST).write_text(json.dumps(meta, indent=2))
        target = self.root / dirname
        old = self.root / f".{dirname}.old"
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
        index = self._index()
        previous = index.get(model_id)
        index[model_id] = {
            "model_id": model_id,
            "version": version,
            "kind": manifest.kind,
            "engine": manifest.engine,
            "dir": dirname,
        }
        self._write_index(index)
        if previous and previous["dir"] != dirname:
            shutil.rmtree(self.root / previous["dir"], ignore_errors=True)
        return index[model_id]


def _parse(model: type[HubAnswer], response: httpx.Response) -> HubAnswer:
    """The hub's answer as `model`; MODEL_NOT_AVAILABLE for a 404, MODEL_VERIFY_FAILED for an
    answer that does not fit the shared manifest model (an unsafe path, a malformed hash)."""
    if response.status_code == 404:
        raise ProtocolError(ErrorCode.MODEL_NOT_AVAILABLE, f"hub: {response.text[:200]}")
    response.raise_for_status()
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise ProtocolError(
            ErrorCode.MODEL_VERIFY_FAILED, f"the hub's answer is not a valid manifest: {exc}"
        ) from exc


def _download(
    http: httpx.Client, url: str, dest: Path, size: int, progress: Progress | None
) -> None:
    """Fetch `url` into `dest`, continuing from what a previous attempt left in `dest.part`."""
    if dest.is_file() and dest.stat().st_size == size:
        return
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if have > size:
        part.unlink()
        have = 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    if have < size or size == 0:
        with http.stream("GET", url, headers=headers) as r:
            if r.status_code == 416:  # what we have is already everything
                pass
            elif r.status_code not in (200, 206):
                raise ProtocolError(
                    ErrorCode.MODEL_NOT_AVAILABLE, f"hub answered {r.status_code} for {url}"
                )
            else:
                mode = "ab" if r.status_code == 206 else "wb"
                done = have if r.status_code == 206 else 0
                with part.open(mode) as out:
                    for block in r.iter_bytes(1 << 20):
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress(dest.name, done, size)
    os.replace(part, dest)


def _model_meta(manifest: HubModelVersion, folder: Path) -> dict[str, Any]:
    """The folder's own `lingua_model.json`: what the hub says, over what the uploader shipped."""
    existing = folder / MANIFEST
    meta: dict[str, Any] = json.loads(existing.read_text()) if existing.is_file() else {}
    said = manifest.model_dump(
        include={"model_id", "version", "kind", "engine", "languages", "dialect", "license"},
        exclude_none=True,
    )
    meta.update(said)
    if manifest.src_lang and manifest.tgt_lang:
        meta["pairs"] = [[manifest.src_lang, manifest.tgt_lang]]
    return meta
