"""The hub's HTTP API (FastAPI). Handlers parse, call the catalog, and shape the answer."""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from . import __version__
from .catalog import Catalog, HubError, check_id
from .ranges import Unsatisfiable, parse_range
from .settings import HubSettings

CHUNK = 4 << 20


class FileInfo(BaseModel):
    path: str
    size: int
    sha256: str


class ModelVersion(BaseModel):
    model_id: str
    version: str
    kind: str
    engine: str
    src_lang: str | None = None
    tgt_lang: str | None = None
    languages: list[str] = Field(default_factory=list)
    dialect: str | None = None
    license: str | None = None
    files: list[FileInfo]
    total_size: int
    created: float


class ModelList(BaseModel):
    models: list[ModelVersion]


class ModelInfo(BaseModel):
    model_id: str
    versions: list[ModelVersion]


class ErrorBody(BaseModel):
    code: str
    message: str


class Health(BaseModel):
    status: str
    version: str
    model_versions: int


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody},
    404: {"model": ErrorBody},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    401: {"model": ErrorBody},
    409: {"model": ErrorBody},
    413: {"model": ErrorBody},
}


def create_app(settings: HubSettings) -> FastAPI:
    catalog = Catalog(settings.store)
    catalog.sweep_staging()
    app = FastAPI(
        title="Lingua model hub",
        version=__version__,
        description="Versioned model files for Lingua nodes, with SHA256 checks and Range "
        "downloads. Writes need `Authorization: Bearer $LINGUA_HUB_TOKEN`.",
    )
    app.state.catalog = catalog

    @app.exception_handler(HubError)
    async def hub_error(_request: Request, exc: HubError) -> JSONResponse:
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)

    def authorize(authorization: str | None) -> None:
        if not settings.token:
            raise HubError(
                401, "UNAUTHORIZED", "writes are disabled: the hub has no LINGUA_HUB_TOKEN"
            )
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.encode(), settings.token.encode()
        ):
            raise HubError(401, "UNAUTHORIZED", "a valid bearer token is required to write")

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health(status="ok", version=__version__, model_versions=len(catalog.search()))

    @app.get("/api/v1/models", response_model=ModelList, responses=ERRORS)
    def list_models(
        kind: Annotated[str | None, Query(description="asr, nmt, tts or vad")] = None,
        language: Annotated[str | None, Query(description="any language the model handles")] = None,
        src: Annotated[str | None, Query(description="source language of a pair")] = None,
        tgt: Annotated[str | None, Query(description="target language of a pair")] = None,
    ) -> ModelList:
        items = catalog.search(kind=kind, language=language, src=src, tgt=tgt)
        return ModelList(models=[ModelVersion(**m) for m in items])

    @app.get("/api/v1/models/{model_id}", response_model=ModelInfo, responses=ERRORS)
    def model_info(model_id: str) -> ModelInfo:
        versions = catalog.versions(check_id(model_id, "model id"))
        if not versions:
            raise HubError(404, "MODEL_NOT_AVAILABLE", f"{model_id} is not in the hub")
        return ModelInfo(model_id=model_id, versions=[ModelVersion(**v) for v in versions])

    @app.get(
        "/api/v1/models/{model_id}/{version}/manifest",
        response_model=ModelVersion,
        responses=ERRORS,
    )
    def manifest(model_id: str, version: str) -> ModelVersion:
        return ModelVersion(
            **catalog.get(check_id(model_id, "model id"), check_id(version, "version"))
        )

    @app.get(
        "/api/v1/models/{model_id}/{version}/files/{path:path}",
        responses={
            **ERRORS,
            200: {"content": {"application/octet-stream": {}}, "description": "the file"},
            206: {"content": {"application/octet-stream": {}}, "description": "a byte range"},
            304: {"description": "not modified (If-None-Match matched the ETag)"},
            416: {"description": "range not satisfiable"},
        },
        response_class=Response,
    )
    def download(
        model_id: str,
        version: str,
        path: str,
        range_header: Annotated[str | None, Header(alias="Range")] = None,
        if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
    ) -> Response:
        file_path, entry = catalog.file_path(model_id, version, path)
        size = int(entry["size"])
        etag = f'"{entry["sha256"]}"'
        headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "public, immutable"}
        tags = {t.strip() for t in (if_none_match or "").split(",")}
        if etag in tags or "*" in tags:
            return Response(status_code=304, headers=headers)
        try:
            span = parse_range(range_header, size)
        except Unsatisfiable:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(status_code=416, headers=headers)
        first, last = span if span else (0, size - 1)
        length = max(0, last - first + 1)
        headers["Content-Length"] = str(length)
        status = 200
        if span:
            status = 206
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        return StreamingResponse(
            _read(file_path, first, length),
            status_code=status,
            headers=headers,
            media_type="application/octet-stream",
        )

    @app.post(
        "/api/v1/models", response_model=ModelVersion, status_code=201, responses=WRITE_ERRORS
    )
    def publish(
        meta: Annotated[str, Form(description="JSON: model_id, version, kind, engine, ...")],
        files: Annotated[list[UploadFile], File(description="file name = path in the model")],
        authorization: Annotated[str | None, Header()] = None,
        content_length: Annotated[int | None, Header()] = None,
    ) -> ModelVersion:
        authorize(authorization)
        if content_length is not None and content_length > settings.max_upload_bytes:
            raise HubError(
                413, "UPLOAD_TOO_LARGE", f"upload exceeds {settings.max_upload_bytes} bytes"
            )
        try:
            data = json.loads(meta)
            if not isinstance(data, dict):
                raise ValueError("meta must be a JSON object")
        except ValueError as exc:
            raise HubError(400, "INVALID_META", f"meta is not a JSON object: {exc}") from exc
        staging = catalog.begin()
        try:
            entries = []
            used = 0
            for upload in files:
                entry = catalog.write_file(
                    staging, upload.filename or "", upload.file, settings.max_upload_bytes, used
                )
                used += entry.size
                entries.append(entry)
            return ModelVersion(**catalog.commit(staging, data, entries))
        finally:
            catalog.abort(staging)

    @app.delete("/api/v1/models/{model_id}/{version}", status_code=204, responses=WRITE_ERRORS)
    def delete(
        model_id: str, version: str, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        authorize(authorization)
        catalog.delete(check_id(model_id, "model id"), check_id(version, "version"))
        return Response(status_code=204)

    return app


def _read(path: os.PathLike[str], first: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(first)
        left = length
        while left > 0:
            block = f.read(min(CHUNK, left))
            if not block:
                return
            left -= len(block)
            yield block
