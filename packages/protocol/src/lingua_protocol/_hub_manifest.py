"""The model hub's manifest: what the hub answers about a model version and what a node's
installer reads before it downloads a single byte.

The hub writes these shapes (they are its OpenAPI response schemas) and the node parses them,
so both sides hold one definition: a field added here is seen by both, and a manifest the node
cannot trust (a path that climbs out of the model folder, a hash that is not a SHA256) fails
validation before anything is written to disk.

Unknown fields are ignored (a newer hub may say more), types are checked strictly.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

HUB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""Model ids and versions: 1 to 128 characters, a letter or digit first, then letters,
digits, `.`, `_` or `-` (so an id is also a safe folder name)."""

MAX_PATH_BYTES = 1024
"""The longest file path inside a model version, in UTF-8 bytes."""

MAX_NAME_BYTES = 255
"""The longest single path segment, in UTF-8 bytes (NAME_MAX on Linux, macOS and Windows)."""

HubModelKind = Literal["asr", "nmt", "tts", "vad"]
HubEngine = Literal["faster-whisper", "transformers", "ctranslate2", "piper", "espeak", "onnx"]
HUB_MODEL_KINDS: tuple[HubModelKind, ...] = ("asr", "nmt", "tts", "vad")
HUB_ENGINES: tuple[HubEngine, ...] = (
    "faster-whisper",
    "transformers",
    "ctranslate2",
    "piper",
    "espeak",
    "onnx",
)


def path_problem(raw: str) -> str | None:
    """Why `raw` is not a safe relative file path inside a model version, or None.

    Refused: empty, absolute or drive paths, backslashes, control characters (NUL included),
    empty, `.` or `..` segments, a segment over `MAX_NAME_BYTES` or a path over
    `MAX_PATH_BYTES` UTF-8 bytes."""
    if not raw:
        return "the path is empty"
    if "\\" in raw or any(ord(c) < 32 or ord(c) == 127 for c in raw):
        return "backslashes and control characters are not allowed"
    if raw.startswith("/") or ":" in PurePosixPath(raw).parts[0]:
        return "absolute paths are not allowed"
    try:
        encoded = raw.encode("utf-8")
    except UnicodeEncodeError:
        return "the path is not valid UTF-8"
    if len(encoded) > MAX_PATH_BYTES:
        return f"the path is over {MAX_PATH_BYTES} bytes"
    for part in raw.split("/"):
        if part in ("", ".", ".."):
            return "path segments '', '.', '..' are not allowed"
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            return f"a path segment is over {MAX_NAME_BYTES} bytes"
    return None


def _check_path(raw: str) -> str:
    problem = path_problem(raw)
    if problem is not None:
        raise ValueError(f"{problem}: {raw!r}")
    return raw


HubId = Annotated[str, Field(pattern=HUB_ID_PATTERN)]
HubFilePath = Annotated[str, AfterValidator(_check_path), Field(max_length=MAX_PATH_BYTES)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class HubModel(BaseModel):
    """Shared configuration: strict types, fields a newer hub adds are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)


class HubFileEntry(HubModel):
    """One file of a model version: its path inside the version, size and SHA256 (computed by
    the hub from the bytes it received, never taken from the uploader)."""

    path: HubFilePath
    size: Annotated[int, Field(ge=0)]
    sha256: Sha256Hex


class HubModelVersion(HubModel):
    """A published model version (the hub's manifest): metadata and every file."""

    model_id: HubId
    version: HubId
    kind: HubModelKind
    engine: HubEngine
    src_lang: str | None = None
    tgt_lang: str | None = None
    languages: list[str] = Field(default_factory=list)
    dialect: str | None = None
    license: str | None = None
    files: list[HubFileEntry]
    total_size: Annotated[int, Field(ge=0)]
    created: float


class HubModelList(HubModel):
    """`GET /api/v1/models`: the versions that match the filters."""

    models: list[HubModelVersion]


class HubModelInfo(HubModel):
    """`GET /api/v1/models/{id}`: a model and its versions, oldest first."""

    model_id: HubId
    versions: list[HubModelVersion]


class HubErrorBody(HubModel):
    """Every error the hub answers: a stable code and a message for people."""

    code: str
    message: str
