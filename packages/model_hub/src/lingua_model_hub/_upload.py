"""A publish's multipart body, parsed as it arrives and written straight into the staging
folder.

Nothing is spooled: each piece of a file goes from the parser into its staging file (hashed on
the way), so the memory an upload holds is one network chunk, whatever its size. Every count a
peer controls is bounded before anything is allocated for it: the `meta` field in bytes, the
number of files, the bytes of each part's headers (where a file's name travels), each file path
(by `PathLayout`). `feed` does blocking file I/O: the HTTP handler calls it in a worker thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lingua_protocol import HubFileEntry
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from ._catalog import HubError, PathLayout, StagedFile


@dataclass(frozen=True)
class UploadLimits:
    """The bounds of one publish body (see `HubSettings` for their defaults)."""

    max_meta_bytes: int
    max_files: int
    max_part_header_bytes: int


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a publish's `Content-Type`, or HubError 400."""
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise HubError(400, "INVALID_UPLOAD", "a publish is multipart/form-data with a boundary")
    return boundary


def _invalid(message: str) -> HubError:
    return HubError(400, "INVALID_UPLOAD", message)


class UploadReceiver:
    """Feeds body chunks through a streaming multipart parser into `staging`.

    Fields: `meta` (JSON text) once, and `files` (one part per file, its filename the path in
    the model). Anything else is refused. Raises HubError from `feed` and `finish`; the caller
    removes the staging folder on any error (`discard` closes the file being written)."""

    def __init__(self, boundary: bytes, staging: Path, limits: UploadLimits) -> None:
        self.staging = staging
        self.limits = limits
        self.layout = PathLayout()
        self.entries: list[HubFileEntry] = []
        self._meta: bytearray | None = None
        self._file: StagedFile | None = None
        self._header_bytes = 0
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._finished = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value_data,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    # --- driving -------------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise _invalid(f"malformed multipart body: {exc}") from exc

    def finish(self) -> tuple[dict[str, Any], list[HubFileEntry]]:
        """The parsed `meta` and the files written, once the whole body has been fed."""
        try:
            self._parser.finalize()
        except FormParserError as exc:
            raise _invalid(f"malformed multipart body: {exc}") from exc
        if not self._finished or self._file is not None:
            raise _invalid("the multipart body ended early")
        if self._meta is None:
            raise HubError(400, "INVALID_META", "the `meta` field is missing")
        try:
            meta = json.loads(bytes(self._meta))
        except ValueError as exc:
            raise HubError(400, "INVALID_META", f"meta is not JSON: {exc}") from exc
        if not isinstance(meta, dict):
            raise HubError(400, "INVALID_META", "meta must be a JSON object")
        return meta, self.entries

    def discard(self) -> None:
        if self._file is not None:
            self._file.discard()
            self._file = None

    # --- parser callbacks ----------------------------------------------------------------------

    def _part_begin(self) -> None:
        self._header_bytes = 0
        self._disposition = b""

    def _count_header(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.limits.max_part_header_bytes:
            raise _invalid(f"a part's headers exceed {self.limits.max_part_header_bytes} bytes")

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if bytes(self._header_name).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name == b"meta" and b"filename" not in options:
            if self._meta is not None:
                raise HubError(400, "INVALID_META", "the `meta` field was sent twice")
            self._meta = bytearray()
            return
        if name != b"files" or b"filename" not in options:
            raise _invalid("a publish has the fields `meta` and `files` only")
        if len(self.entries) >= self.limits.max_files:
            raise HubError(
                400, "TOO_MANY_FILES", f"a model version has at most {self.limits.max_files} files"
            )
        try:
            filename = options[b"filename"].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HubError(400, "INVALID_PATH", "a file name is not UTF-8") from exc
        self._file = StagedFile(self.staging, self.layout.add(filename))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.write(data[start:end])
            return
        if self._meta is None:
            raise _invalid("part data outside a field")
        self._meta += data[start:end]
        if len(self._meta) > self.limits.max_meta_bytes:
            raise HubError(400, "INVALID_META", f"meta exceeds {self.limits.max_meta_bytes} bytes")

    def _part_end(self) -> None:
        if self._file is not None:
            self.entries.append(self._file.close())
            self._file = None

    def _end(self) -> None:
        self._finished = True
