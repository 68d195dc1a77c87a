"""The hub checks before it reads, and bounds what a peer can hold: over a real running hub.

Each test sends what a hostile or broken peer sends (raw sockets where httpx would be too
polite) and checks the documented answer of `docs/model_hub.md` "Limits".
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lingua_model_hub import HubProcess

TOKEN = "test-admin-token"  # the `hub` fixture's write token (conftest.py)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BOUNDARY = "lingua-test-boundary"


def multipart_head(meta: dict[str, object], filename: str) -> bytes:
    """The start of a publish body: the `meta` field, then the headers of one file part."""
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="meta"\r\n\r\n'
        + json.dumps(meta)
        + f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()


def post_head(length: int, *, token: bool, extra: str = "") -> bytes:
    auth = f"Authorization: Bearer {TOKEN}\r\n" if token else ""
    return (
        f"POST /api/v1/models HTTP/1.1\r\nHost: x\r\n{auth}{extra}"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def read_response(s: socket.socket, timeout_s: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the answer, read until the hub closes the connection."""
    s.settimeout(timeout_s)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.fixture(scope="module")
def small_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub with short timeouts and a small upload limit, so the limits show quickly."""
    env = {
        "LINGUA_HUB_MAX_UPLOAD_BYTES": str(8 << 20),
        "LINGUA_HUB_HEADER_TIMEOUT_S": "1",
        "LINGUA_HUB_BODY_TIMEOUT_S": "1",
        "LINGUA_HUB_KEEP_ALIVE_TIMEOUT_S": "1",
    }
    with HubProcess(tmp_path_factory.mktemp("limits"), token=TOKEN, env=env) as running:
        yield running


# --- authenticate and size-check from the headers, before the body ---------------------------


def test_no_token_is_401_without_receiving_the_body(hub: HubProcess) -> None:
    """300 MiB announced, not one byte of it sent: the answer comes from the headers alone."""
    with socket.create_connection(("127.0.0.1", hub.port)) as s:
        s.sendall(post_head(300 << 20, token=False))
        status, headers, body = read_response(s)
    assert status == 401
    assert json.loads(body)["code"] == "UNAUTHORIZED"
    assert headers["connection"] == "close"


def test_over_the_size_limit_is_413_without_receiving_the_body(small_hub: HubProcess) -> None:
    with socket.create_connection(("127.0.0.1", small_hub.port)) as s:
        s.sendall(post_head((8 << 20) + 1, token=True))
        status, _, body = read_response(s)
    assert status == 413
    assert json.loads(body)["code"] == "UPLOAD_TOO_LARGE"


def test_a_publish_without_content_length_is_411(small_hub: HubProcess) -> None:
    def chunks() -> Iterator[bytes]:
        yield multipart_head({"model_id": "chunked", "version": "1"}, "x.bin")

    r = httpx.post(
        f"{small_hub.url}/api/v1/models",
        content=chunks(),  # a generator: httpx sends it chunked, with no Content-Length
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert r.status_code == 411
    assert r.json()["code"] == "LENGTH_REQUIRED"


# --- the body streams into the staging folder, bounded -----------------------------------


def test_the_body_streams_into_the_staging_folder_as_it_arrives(small_hub: HubProcess) -> None:
    """Half of a 4 MiB file sent, the rest held back: the half is already in the version's
    staging file (hashed as it came), not spooled somewhere until the body ends."""
    meta = {"model_id": "streamed", "version": "1", "kind": "vad", "engine": "onnx"}
    head = multipart_head(meta, "big.bin")
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    half = 2 << 20
    staging = small_hub.store / ".staging"
    with socket.create_connection(("127.0.0.1", small_hub.port)) as s:
        s.sendall(post_head(len(head) + 2 * half + len(tail), token=True) + head)
        s.sendall(b"\x07" * half)
        deadline = time.monotonic() + 10
        written = 0
        while written < half and time.monotonic() < deadline:
            written = sum(p.stat().st_size for p in staging.rglob("big.bin"))
            time.sleep(0.05)
        assert written == half
        s.sendall(b"\x07" * half + tail)
        status, _, body = read_response(s)
    assert status == 201, body
    (entry,) = json.loads(body)["files"]
    assert entry["sha256"] == hashlib.sha256(b"\x07" * 2 * half).hexdigest()
    assert not any(staging.iterdir())


def test_a_stalled_body_is_408_and_leaves_nothing(small_hub: HubProcess) -> None:
    meta = {"model_id": "stalled", "version": "1", "kind": "vad", "engine": "onnx"}
    head = multipart_head(meta, "x.bin")
    with socket.create_connection(("127.0.0.1", small_hub.port)) as s:
        s.sendall(post_head(len(head) + 1000, token=True) + head)
        status, _, body = read_response(s)  # the rest never comes
    assert status == 408
    assert json.loads(body)["code"] == "UPLOAD_TIMEOUT"
    assert httpx.get(f"{small_hub.url}/api/v1/models/stalled").status_code == 404
    assert not any((small_hub.store / ".staging").iterdir())


# --- slow and idle connections ---------------------------------------------------------------


def test_a_slowloris_connection_is_closed_at_the_header_deadline(small_hub: HubProcess) -> None:
    """One header byte every 0.1 s never completes a request: closed 1 s after it opened."""
    with socket.create_connection(("127.0.0.1", small_hub.port)) as s:
        s.settimeout(0.1)
        opened = time.monotonic()
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        closed = False
        while not closed and time.monotonic() - opened < 6:
            try:
                s.sendall(b"X")
                closed = s.recv(1) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
        assert closed
        assert time.monotonic() - opened < 2.5


def test_an_idle_keep_alive_connection_is_closed_at_its_timeout(small_hub: HubProcess) -> None:
    with socket.create_connection(("127.0.0.1", small_hub.port)) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        data = b""
        while not data.endswith(b"}"):  # the whole answer: headers and the JSON body
            data += s.recv(4096)
        assert data.startswith(b"HTTP/1.1 200 ")
        answered = time.monotonic()
        assert s.recv(4096) == b""  # then nothing more: the hub closes the idle connection
        assert time.monotonic() - answered < 2.5


def test_idle_connections_do_not_lock_out_health(tmp_path: Path) -> None:
    """A hub allowed 128 open files and 300 connections that never send a byte: the oldest
    idle ones are closed to make room, and /health answers at once."""
    with HubProcess(tmp_path / "store", open_files=128) as small:
        idle = [socket.create_connection(("127.0.0.1", small.port)) for _ in range(300)]
        try:
            r = httpx.get(f"{small.url}/health", timeout=5)
            assert r.status_code == 200
        finally:
            for s in idle:
                s.close()


def test_with_every_connection_busy_a_new_one_gets_503(tmp_path: Path) -> None:
    """Four connections each in the middle of a publish (headers done, body pending) hold the
    cap of four: a fifth is answered 503 at once, not left waiting."""
    env = {"LINGUA_HUB_MAX_CONNECTIONS": "4", "LINGUA_HUB_BODY_TIMEOUT_S": "20"}
    with HubProcess(tmp_path / "store", token=TOKEN, env=env) as small:
        busy = []
        try:
            for _ in range(4):
                s = socket.create_connection(("127.0.0.1", small.port))
                busy.append(s)
                s.sendall(post_head(1000, token=True, extra="Expect: 100-continue\r\n"))
                s.settimeout(5)
                # the hub asks for the body only once the request is under way
                assert s.recv(4096).startswith(b"HTTP/1.1 100 ")
            with socket.create_connection(("127.0.0.1", small.port)) as extra:
                status, _, body = read_response(extra)
            assert status == 503
            assert json.loads(body)["code"] == "TOO_MANY_CONNECTIONS"
        finally:
            for s in busy:
                s.close()


# --- immutable versions and names ---------------------------------------------------------


def _publish(hub: HubProcess, model_id: str, files: list[tuple[str, bytes]]) -> httpx.Response:
    meta = {"model_id": model_id, "version": "1", "kind": "vad", "engine": "onnx"}
    return httpx.post(
        f"{hub.url}/api/v1/models",
        data={"meta": json.dumps(meta)},
        files=[("files", (name, data)) for name, data in files],
        headers=AUTH,
    )


def test_a_deleted_version_comes_back_only_with_the_same_bytes(hub: HubProcess) -> None:
    assert _publish(hub, "tomb", [("m.onnx", b"first")]).status_code == 201
    assert httpx.delete(f"{hub.url}/api/v1/models/tomb/1", headers=AUTH).status_code == 204
    other = _publish(hub, "tomb", [("m.onnx", b"other bytes")])
    assert other.status_code == 409
    assert other.json()["code"] == "VERSION_DELETED"
    assert httpx.get(f"{hub.url}/api/v1/models/tomb").status_code == 404
    same = _publish(hub, "tomb", [("m.onnx", b"first")])
    assert same.status_code == 201


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ([("n" * 256 + ".bin", b"x")], "INVALID_PATH"),
        ([("sub/" + "é" * 128, b"x")], "INVALID_PATH"),  # 256 bytes in 128 characters
        ([("a", b"x"), ("a/b", b"y")], "PATH_CONFLICT"),
        ([("a/b", b"y"), ("a", b"x")], "PATH_CONFLICT"),
        ([("a", b"x"), ("a", b"y")], "DUPLICATE_FILE"),
    ],
)
def test_names_the_filesystem_cannot_hold_are_400(
    hub: HubProcess, files: list[tuple[str, bytes]], code: str
) -> None:
    r = _publish(hub, "names", files)
    assert r.status_code == 400
    assert r.json()["code"] == code
    assert httpx.get(f"{hub.url}/api/v1/models/names").status_code == 404


@pytest.mark.parametrize(
    ("meta", "code"),
    [
        ({"model_id": "newline\n"}, "INVALID_ID"),  # `$` alone would let a trailing newline in
        ({"model_id": "d", "dialect": {"not": "text"}}, "INVALID_META"),
        ({"model_id": "l", "languages": [1, 2]}, "INVALID_META"),
        ({"model_id": 7}, "INVALID_META"),
    ],
)
def test_meta_that_cannot_be_stored_is_400(
    hub: HubProcess, meta: dict[str, object], code: str
) -> None:
    body = {"model_id": "x", "version": "1", "kind": "vad", "engine": "onnx", **meta}
    r = httpx.post(
        f"{hub.url}/api/v1/models",
        data={"meta": json.dumps(body)},
        files=[("files", ("m.onnx", b"x"))],
        headers=AUTH,
    )
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code, r.text


def test_a_nul_in_a_filename_is_400(hub: HubProcess) -> None:
    """Sent raw: httpx would percent-encode the NUL."""
    meta = {"model_id": "nul", "version": "1", "kind": "vad", "engine": "onnx"}
    body = multipart_head(meta, "a\x00b.bin") + f"x\r\n--{BOUNDARY}--\r\n".encode()
    r = httpx.post(
        f"{hub.url}/api/v1/models",
        content=body,
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert r.status_code == 400
    assert r.json()["code"] == "INVALID_PATH"
