"""The streaming multipart receiver alone: bytes in, staging files and limits out (no sockets)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from lingua_model_hub._catalog import HubError
from lingua_model_hub._upload import UploadLimits, UploadReceiver, boundary_of

B = b"bnd"
LIMITS = UploadLimits(max_meta_bytes=200, max_files=2, max_part_header_bytes=300)


def part(headers: str, data: bytes) -> bytes:
    return b"--" + B + b"\r\n" + headers.encode() + b"\r\n\r\n" + data + b"\r\n"


def meta_part(meta: object) -> bytes:
    return part('Content-Disposition: form-data; name="meta"', json.dumps(meta).encode())


def file_part(name: str, data: bytes) -> bytes:
    return part(f'Content-Disposition: form-data; name="files"; filename="{name}"', data)


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + B + b"--\r\n"


def feed_all(tmp_path: Path, data: bytes, step: int = 7) -> UploadReceiver:
    receiver = UploadReceiver(B, tmp_path, LIMITS)
    for i in range(0, len(data), step):  # small pieces: every boundary split is exercised
        receiver.feed(data[i : i + step])
    return receiver


def test_files_land_in_staging_hashed_in_any_chunking(tmp_path: Path) -> None:
    blob = bytes(range(256)) * 10
    data = body(meta_part({"model_id": "m"}), file_part("sub/w.bin", blob))
    meta, entries = feed_all(tmp_path, data).finish()
    assert meta == {"model_id": "m"}
    assert [(e.path, e.size, e.sha256) for e in entries] == [
        ("sub/w.bin", len(blob), hashlib.sha256(blob).hexdigest())
    ]
    assert (tmp_path / "sub" / "w.bin").read_bytes() == blob


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (body(meta_part({"x": "y" * 300})), "INVALID_META"),
        (body(*(file_part(f"f{i}", b"x") for i in range(3))), "TOO_MANY_FILES"),
        (body(file_part("n" * 400, b"x")), "INVALID_UPLOAD"),  # headers over 300 bytes
        (body(part('Content-Disposition: form-data; name="other"', b"x")), "INVALID_UPLOAD"),
        (body(meta_part({}), meta_part({})), "INVALID_META"),
    ],
)
def test_limits_are_refused_while_parsing(tmp_path: Path, data: bytes, code: str) -> None:
    with pytest.raises(HubError) as info:
        feed_all(tmp_path, data).finish()
    assert info.value.status == 400
    assert info.value.code == code


def test_a_body_cut_short_is_refused(tmp_path: Path) -> None:
    receiver = feed_all(tmp_path, file_part("a.bin", b"12345"))
    with pytest.raises(HubError) as info:
        receiver.finish()
    assert info.value.code == "INVALID_UPLOAD"
    receiver.discard()


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "multipart/form-data", "text/plain; boundary=x"]
)
def test_only_multipart_with_a_boundary_is_a_publish(content_type: str | None) -> None:
    with pytest.raises(HubError):
        boundary_of(content_type)
    assert boundary_of("multipart/form-data; boundary=abc") == b"abc"
