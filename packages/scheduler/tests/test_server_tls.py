"""The scheduler's own TLS option: with a certificate and key it serves wss:// and https://."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from lingua_protocol import SessionInit
from lingua_scheduler import SchedulerServer, SchedulerSettings
from websockets.asyncio.client import connect

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_wss_and_https_with_the_servers_own_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    settings = SchedulerSettings(host="127.0.0.1", port=0, tls_certfile=cert, tls_keyfile=key)
    server = SchedulerServer(settings)
    await server.start()
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=trust) as http:
            health = await http.get(f"https://127.0.0.1:{server.port}/health")
        assert health.json() == {"status": "ok"}
        url = f"wss://127.0.0.1:{server.port}/ws/session"
        async with connect(url, ssl=trust) as ws:
            await ws.send(SessionInit(src_lang="en", tgt_lang="zh").to_json())
            assert json.loads(await ws.recv())["type"] == "session_init_ack"
    finally:
        await server.stop()
