"""Publish the node's embedded default models to a model hub over its HTTP API.

`hatch run node models publish-bundled --hub URL --token T`: the node builds its defaults from
Python packages (`embedded.py`), so it is the node that knows them; the hub only receives
files. Each model is one `POST /api/v1/models` with the hub's token, the files streamed from
disk (never held in memory). A version the hub already has is reported, not an error, and not
uploaded again (its manifest is asked for first).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from lingua_protocol import ErrorCode, HubModelVersion, ProtocolError

from ._embedded import (
    PIPER_VOICE,
    WHISPER_ID,
    build_whisper_base,
    piper_voice_path,
    silero_vad_path,
)

_LANGUAGE_TOKEN = re.compile(r"^<\|([a-z]{2,3})\|>$")


@dataclass(frozen=True)
class BundledModel:
    """A folder of model files and the metadata it is published with."""

    folder: Path
    meta: dict[str, Any]


def whisper_languages(model_dir: Path) -> list[str]:
    """The languages a converted Whisper model knows, read from its tokenizer's language
    tokens (`<|en|>`, `<|zh|>`, ...), so no private name of faster-whisper is needed."""
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    found = {
        m.group(1)
        for token in tokenizer.get("added_tokens", [])
        if (m := _LANGUAGE_TOKEN.match(str(token.get("content", ""))))
    }
    return sorted(found)


def bundled_models(work: Path, models_dir: Path | None = None) -> list[BundledModel]:
    """The node's embedded defaults as publishable folders: Whisper built in (or reused from)
    `models_dir`, the node's own models folder, else `work`; the others copied into `work`."""
    out: list[BundledModel] = []
    whisper = build_whisper_base(models_dir or work)
    out.append(
        BundledModel(
            whisper,
            {
                "model_id": WHISPER_ID,
                "version": "1",
                "kind": "asr",
                "engine": "faster-whisper",
                "languages": whisper_languages(whisper),
                "license": "MIT",
            },
        )
    )
    voice = piper_voice_path()
    if voice is not None:
        folder = work / PIPER_VOICE
        folder.mkdir(exist_ok=True)
        for f in (voice, Path(f"{voice}.json")):
            (folder / f.name).write_bytes(f.read_bytes())
        out.append(
            BundledModel(
                folder,
                {
                    "model_id": PIPER_VOICE,
                    "version": "1",
                    "kind": "tts",
                    "engine": "piper",
                    "languages": ["en"],
                    "license": "see MODEL_CARD",
                },
            )
        )
    vad = silero_vad_path()
    folder = work / "silero-vad"
    folder.mkdir(exist_ok=True)
    (folder / vad.name).write_bytes(vad.read_bytes())
    out.append(
        BundledModel(
            folder,
            {
                "model_id": "silero-vad",
                "version": "1",
                "kind": "vad",
                "engine": "onnx",
                "languages": [],
                "license": "MIT",
            },
        )
    )
    return out


def _files(folder: Path) -> Iterator[Path]:
    """Every regular file under `folder` except hidden build markers (`.verified`)."""
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not path.is_symlink() and not rel.name.startswith("."):
            yield path


def publish_folder(
    hub: str, token: str, model: BundledModel, *, client: httpx.Client | None = None
) -> HubModelVersion | None:
    """Publish one folder; the hub's record, or None when that version is already there.

    Raises ProtocolError MODEL_NOT_AVAILABLE with the hub's answer for any other refusal."""
    own = client is None
    http = client or httpx.Client(base_url=hub, timeout=httpx.Timeout(30.0, write=300.0))
    model_id, version = model.meta["model_id"], model.meta["version"]
    try:
        if http.get(f"/api/v1/models/{model_id}/{version}/manifest").status_code == 200:
            return None
        with ExitStack() as stack:
            files = [
                (
                    "files",
                    (
                        p.relative_to(model.folder).as_posix(),
                        stack.enter_context(p.open("rb")),
                        "application/octet-stream",
                    ),
                )
                for p in _files(model.folder)
            ]
            response = http.post(
                "/api/v1/models",
                data={"meta": json.dumps(model.meta)},
                files=files,
                headers={"Authorization": f"Bearer {token}"},
            )
    finally:
        if own:
            http.close()
    if response.status_code == 201:
        return HubModelVersion.model_validate(response.json())
    if response.status_code == 409 and _code(response) == "VERSION_EXISTS":
        return None
    raise ProtocolError(
        ErrorCode.MODEL_NOT_AVAILABLE,
        f"the hub refused {model_id}@{version}: {response.status_code} {response.text[:300]}",
    )


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return str(body.get("code")) if isinstance(body, dict) else None
