"""The hub over a real running server (uvicorn in a child process), driven with httpx."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import httpx
import pytest
from lingua_model_hub import Catalog, HubProcess

TOKEN = "test-admin-token"  # the `hub` fixture's write token (conftest.py)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def publish(hub: HubProcess, folder: Path, **meta: object) -> httpx.Response:
    files = [
        ("files", (p.relative_to(folder).as_posix(), p.read_bytes(), "application/octet-stream"))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]
    body = {
        "model_id": "m",
        "version": "1",
        "kind": "nmt",
        "engine": "transformers",
        "src_lang": "en",
        "tgt_lang": "zh",
        **meta,
    }
    return httpx.post(
        f"{hub.url}/api/v1/models",
        data={"meta": json.dumps(body)},
        files=files,
        headers=AUTH,
        timeout=30,
    )


def test_publish_then_list_filter_and_manifest(hub: HubProcess, model_dir: Path) -> None:
    r = publish(hub, model_dir, model_id="pub-en-zh")
    assert r.status_code == 201, r.text
    record = r.json()
    blob = (model_dir / "model.bin").read_bytes()
    by_path = {f["path"]: f for f in record["files"]}
    assert by_path["model.bin"] == {
        "path": "model.bin",
        "size": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    assert "sub/vocab.txt" in by_path
    assert record["total_size"] == sum(
        f.stat().st_size for f in model_dir.rglob("*") if f.is_file()
    )
    publish(
        hub,
        model_dir,
        model_id="pub-tts",
        kind="tts",
        engine="piper",
        src_lang=None,
        tgt_lang=None,
        languages=["de"],
    )

    def ids(**q: str) -> set[str]:
        models = httpx.get(f"{hub.url}/api/v1/models", params=q).json()["models"]
        return {m["model_id"] for m in models}

    assert {"pub-en-zh", "pub-tts"} <= ids()
    assert "pub-en-zh" in ids(kind="nmt")
    assert "pub-tts" not in ids(kind="nmt")
    assert ids(src="en", tgt="zh") >= {"pub-en-zh"}
    assert "pub-en-zh" not in ids(src="zh", tgt="en")
    assert "pub-tts" in ids(language="de")
    info = httpx.get(f"{hub.url}/api/v1/models/pub-en-zh").json()
    assert [v["version"] for v in info["versions"]] == ["1"]
    manifest = httpx.get(f"{hub.url}/api/v1/models/pub-en-zh/1/manifest").json()
    assert manifest["files"] == record["files"]


def test_versions_are_immutable(hub: HubProcess, model_dir: Path) -> None:
    assert publish(hub, model_dir, model_id="immut").status_code == 201
    again = publish(hub, model_dir, model_id="immut")
    assert again.status_code == 409
    assert again.json()["code"] == "VERSION_EXISTS"


def test_downloads_full_ranged_suffix_416_and_etag(hub: HubProcess, model_dir: Path) -> None:
    publish(hub, model_dir, model_id="dl")
    blob = (model_dir / "model.bin").read_bytes()
    url = f"{hub.url}/api/v1/models/dl/1/files/model.bin"
    full = httpx.get(url)
    assert full.status_code == 200
    assert full.content == blob
    assert full.headers["content-length"] == str(len(blob))
    etag = full.headers["etag"]
    assert etag == f'"{hashlib.sha256(blob).hexdigest()}"'
    part = httpx.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == blob[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(blob)}"
    tail = httpx.get(url, headers={"Range": "bytes=-100"})
    assert tail.status_code == 206
    assert tail.content == blob[-100:]
    open_end = httpx.get(url, headers={"Range": f"bytes={len(blob) - 10}-"})
    assert open_end.content == blob[-10:]
    beyond = httpx.get(url, headers={"Range": f"bytes={len(blob)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(blob)}"
    assert httpx.get(url, headers={"If-None-Match": etag}).status_code == 304
    nested = httpx.get(f"{hub.url}/api/v1/models/dl/1/files/sub/vocab.txt")
    assert nested.content == b"a\nb\nc\n"


def test_writes_need_the_token(hub: HubProcess, model_dir: Path) -> None:
    files = [("files", ("x.bin", b"x"))]
    meta = {
        "meta": json.dumps({"model_id": "nope", "version": "1", "kind": "vad", "engine": "onnx"})
    }
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = httpx.post(f"{hub.url}/api/v1/models", data=meta, files=files, headers=headers)
        assert r.status_code == 401
        assert r.json()["code"] == "UNAUTHORIZED"
    publish(hub, model_dir, model_id="keep")
    assert httpx.delete(f"{hub.url}/api/v1/models/keep/1").status_code == 401
    assert httpx.get(f"{hub.url}/api/v1/models/keep/1/manifest").status_code == 200
    assert httpx.delete(f"{hub.url}/api/v1/models/keep/1", headers=AUTH).status_code == 204
    assert httpx.get(f"{hub.url}/api/v1/models/keep/1/manifest").status_code == 404


def _raw_get(hub: HubProcess, target: str) -> int:
    """Send a request line exactly as given (httpx would normalise the dots away)."""
    with socket.create_connection(("127.0.0.1", hub.port)) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status = s.recv(4096).split(b"\r\n", 1)[0]
    return int(status.split()[1])


@pytest.mark.parametrize(
    "target",
    [
        "/api/v1/models/trav/1/files/../../../catalog.sqlite3",
        "/api/v1/models/trav/1/files/%2e%2e/%2e%2e/%2e%2e/catalog.sqlite3",
        "/api/v1/models/trav/1/files/..%2f..%2f..%2fcatalog.sqlite3",
        "/api/v1/models/trav/1/files//etc/passwd",
        "/api/v1/models/trav/1/files/%2Fetc%2Fpasswd",
        "/api/v1/models/trav/1/files/sub/..%5c..%5cconfig.json",
        "/api/v1/models/..%2f..%2f/1/files/x",
        "/api/v1/models/trav/..%2f..%2fmodels/files/config.json",
    ],
)
def test_path_traversal_is_refused(hub: HubProcess, model_dir: Path, target: str) -> None:
    publish(hub, model_dir, model_id="trav")
    assert _raw_get(hub, target) in (400, 404)


def test_upload_paths_cannot_escape(hub: HubProcess) -> None:
    for bad in ("../evil.bin", "/abs.bin", "a/../../b.bin", "..\\x.bin"):
        r = httpx.post(
            f"{hub.url}/api/v1/models",
            data={
                "meta": json.dumps(
                    {"model_id": "esc", "version": "1", "kind": "vad", "engine": "onnx"}
                )
            },
            files=[("files", (bad, b"x"))],
            headers=AUTH,
        )
        assert r.status_code == 400, (bad, r.text)
    assert httpx.get(f"{hub.url}/api/v1/models/esc").status_code == 404


def test_a_symlink_in_the_store_is_not_followed(hub: HubProcess, model_dir: Path) -> None:
    publish(hub, model_dir, model_id="link")
    stored = hub.store / "models" / "link" / "1" / "config.json"
    stored.unlink()
    stored.symlink_to("/etc/hostname")
    r = httpx.get(f"{hub.url}/api/v1/models/link/1/files/config.json")
    assert r.status_code == 404


def test_an_interrupted_upload_leaves_nothing_listed(hub: HubProcess) -> None:
    boundary = "XyZ"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="meta"\r\n\r\n'
        + json.dumps({"model_id": "cut", "version": "1", "kind": "vad", "engine": "onnx"})
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    with socket.create_connection(("127.0.0.1", hub.port)) as s:
        s.sendall(
            (
                f"POST /api/v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {len(head) + 10_000_000}\r\n\r\n"
            ).encode()
            + head
        )
        s.sendall(b"\x00" * 1_000_000)  # a tenth of what was announced, then the line drops
    assert httpx.get(f"{hub.url}/api/v1/models/cut").status_code == 404
    listed = httpx.get(f"{hub.url}/api/v1/models").json()["models"]
    assert "cut" not in {m["model_id"] for m in listed}


def test_oversized_upload_is_refused(tmp_path: Path) -> None:
    env = {"LINGUA_HUB_MAX_UPLOAD_BYTES": "1000"}
    with HubProcess(tmp_path / "small", token=TOKEN, env=env) as small:
        r = httpx.post(
            f"{small.url}/api/v1/models",
            data={
                "meta": json.dumps(
                    {"model_id": "big", "version": "1", "kind": "vad", "engine": "onnx"}
                )
            },
            files=[("files", ("big.bin", b"\x01" * 5000))],
            headers=AUTH,
        )
        assert r.status_code == 413
        assert r.json()["code"] == "UPLOAD_TOO_LARGE"


def test_verify_finds_a_flipped_byte(tmp_path: Path, model_dir: Path) -> None:
    catalog = Catalog(tmp_path / "store")
    catalog.publish_dir(
        model_dir,
        {
            "model_id": "v",
            "version": "1",
            "kind": "nmt",
            "engine": "transformers",
            "src_lang": "en",
            "tgt_lang": "zh",
        },
    )
    assert catalog.verify() == []
    stored = tmp_path / "store" / "models" / "v" / "1" / "model.bin"
    data = bytearray(stored.read_bytes())
    data[12345] ^= 0x01
    stored.write_bytes(bytes(data))
    problems = catalog.verify()
    assert len(problems) == 1
    assert "model.bin: corrupted" in problems[0]
