"""The hub's HTTP API (FastAPI). Handlers parse, call the catalog, and shape the answer.

Every answer that is not a success carries the documented error body `{"code", "message"}`,
including FastAPI's own 404 (no route), 405 and 422, so a client parses one shape. A publish
is authenticated and its `Content-Length` checked from the headers alone: a peer without the
token, or with a body over the limit, is answered before one byte of its body is read.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from anyio import to_thread
from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from lingua_protocol import (
    HubErrorBody,
    HubModelInfo,
    HubModelList,
    HubModelVersion,
)
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from . import __version__
from ._catalog import Catalog, HubError, check_id
from ._ranges import Unsatisfiable, parse_range
from ._settings import HubSettings
from ._upload import UploadLimits, UploadReceiver, boundary_of

CHUNK = 4 << 20
T = TypeVar("T")


class Health(BaseModel):
    status: str
    version: str
    model_versions: int


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": HubErrorBody} for status in (400, 404, 405, 422)
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    **{status: {"model": HubErrorBody} for status in (401, 408, 409, 411, 413)},
}
PUBLISH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["meta", "files"],
                    "properties": {
                        "meta": {
                            "type": "string",
                            "description": "JSON: model_id, version, kind, engine, ...",
                        },
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "file name = path in the model",
                        },
                    },
                }
            }
        },
    }
}
STATUS_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
_DIGITS = re.compile(r"^[0-9]{1,19}$")


def _error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        HubErrorBody(code=code, message=message).model_dump(),
        status_code=status,
        headers=headers or None,
    )


async def _in_thread(func: Callable[..., T], *args: Any) -> T:
    """Blocking file and database work runs in a worker thread, never on the event loop."""
    return await to_thread.run_sync(func, *args)


def declared_length(headers: Any, limit: int) -> int:
    """A publish's body length from its headers, checked against `limit` before reading."""
    if headers.get("transfer-encoding") is not None:
        raise HubError(411, "LENGTH_REQUIRED", "a publish states its Content-Length (no chunks)")
    raw = headers.get("content-length")
    if raw is None:
        raise HubError(411, "LENGTH_REQUIRED", "a publish states its Content-Length")
    if not _DIGITS.match(raw.strip()):
        raise HubError(400, "INVALID_UPLOAD", "Content-Length is not a number")
    length = int(raw)
    if length > limit:
        raise HubError(413, "UPLOAD_TOO_LARGE", f"upload exceeds {limit} bytes")
    return length


async def _receive(
    request: Request, receiver: UploadReceiver, length: int, timeout_s: float
) -> None:
    """Feed the body to `receiver` as it arrives; 408 when the peer stalls for `timeout_s`."""
    stream = request.stream()
    received = 0
    while True:
        try:
            async with asyncio.timeout(timeout_s):
                chunk = await anext(stream)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise HubError(
                408, "UPLOAD_TIMEOUT", f"no part of the body arrived for {timeout_s:g} s"
            ) from None
        received += len(chunk)
        if received > length:  # h11 enforces the framing; this only keeps the promise local
            raise HubError(413, "UPLOAD_TOO_LARGE", "the body is longer than its Content-Length")
        if chunk:
            await _in_thread(receiver.feed, chunk)


def create_app(settings: HubSettings) -> FastAPI:
    catalog = Catalog(settings.store)
    catalog.sweep_staging()
    limits = UploadLimits(
        max_meta_bytes=settings.max_meta_bytes,
        max_files=settings.max_files,
        max_part_header_bytes=settings.max_part_header_bytes,
    )
    app = FastAPI(
        title="Lingua model hub",
        version=__version__,
        description="Versioned model files for Lingua nodes, with SHA256 checks and Range "
        "downloads. Writes need `Authorization: Bearer $LINGUA_HUB_TOKEN`.",
    )
    app.state.catalog = catalog

    @app.exception_handler(HubError)
    async def hub_error(request: Request, exc: HubError) -> JSONResponse:
        # a refused publish may leave its body unread: close rather than read it to the end
        headers = {"Connection": "close"} if request.method == "POST" else {}
        return _error(exc.status, exc.code, exc.message, **headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        return _error(exc.status_code, code, str(exc.detail), **dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return _error(422, "INVALID_REQUEST", problems[:1000])

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
        return Health(status="ok", version=__version__, model_versions=catalog.count())

    @app.get("/api/v1/models", response_model=HubModelList, responses=ERRORS)
    def list_models(
        kind: Annotated[str | None, Query(description="asr, nmt, tts or vad")] = None,
        language: Annotated[str | None, Query(description="any language the model handles")] = None,
        src: Annotated[str | None, Query(description="source language of a pair")] = None,
        tgt: Annotated[str | None, Query(description="target language of a pair")] = None,
    ) -> HubModelList:
        return HubModelList(models=catalog.search(kind=kind, language=language, src=src, tgt=tgt))

    @app.get("/api/v1/models/{model_id}", response_model=HubModelInfo, responses=ERRORS)
    def model_info(model_id: str) -> HubModelInfo:
        versions = catalog.versions(check_id(model_id, "model id"))
        if not versions:
            raise HubError(404, "MODEL_NOT_AVAILABLE", f"{model_id} is not in the hub")
        return HubModelInfo(model_id=model_id, versions=versions)

    @app.get(
        "/api/v1/models/{model_id}/{version}/manifest",
        response_model=HubModelVersion,
        responses=ERRORS,
    )
    def manifest(model_id: str, version: str) -> HubModelVersion:
        return catalog.get(check_id(model_id, "model id"), check_id(version, "version"))

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
        size = entry.size
        etag = f'"{entry.sha256}"'
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
        "/api/v1/models",
        response_model=HubModelVersion,
        status_code=201,
        responses=WRITE_ERRORS,
        openapi_extra=PUBLISH_BODY,
    )
    async def publish(request: Request) -> HubModelVersion:
        """Multipart `meta` (JSON) and `files`, streamed into a staging folder as they arrive.

        The token, `Content-Length` and `Content-Type` are checked first, from the headers."""
        authorize(request.headers.get("authorization"))
        length = declared_length(request.headers, settings.max_upload_bytes)
        boundary = boundary_of(request.headers.get("content-type"))
        staging = await _in_thread(catalog.begin)
        receiver = UploadReceiver(boundary, staging, limits)
        try:
            try:
                await _receive(request, receiver, length, settings.body_timeout_s)
            except ClientDisconnect:
                raise HubError(400, "UPLOAD_INTERRUPTED", "the uploader went away") from None
            meta, entries = await _in_thread(receiver.finish)
            return await _in_thread(catalog.commit, staging, meta, entries)
        finally:
            receiver.discard()
            await _in_thread(catalog.abort, staging)

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
