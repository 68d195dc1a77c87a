"""English speech through the real system; speech translation into English; a pair nobody
serves, then served once a node with that pair joins (its model installed from the hub)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import wave
from pathlib import Path

from lingua_client.local_cluster import LocalCluster
from lingua_model_hub.catalog import Catalog

from .e2e_support import SPEECH, models_with_whisper, send_files


async def test_english_speech_to_english_text_and_piper_speech(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    cluster.start_scheduler()
    cluster.wait_node_ready(cluster.start_node("node"))
    code, rows = await send_files(
        cluster.session_url,
        [SPEECH / "weather.wav", SPEECH / "river.wav"],
        "en",
        "en",
        save_tts=tmp_path / "tts",
    )
    assert code == 0, rows
    assert "sunny" in rows[0]["text_asr"]
    assert "river" in rows[1]["text_asr"]
    assert [r["utterance_index"] for r in rows] == [0, 1]
    with wave.open(rows[0]["tts_file"], "rb") as w:
        assert w.getframerate() == 22050
        assert w.getnframes() > 22050


async def test_speech_translation_into_english(cluster: LocalCluster) -> None:
    cluster.start_scheduler()
    cluster.wait_node_ready(cluster.start_node("node"))
    items = json.loads((SPEECH / "foreign.json").read_text())
    code, rows = await send_files(
        cluster.session_url, [SPEECH / i["file"] for i in items], "es", "en", use_tts=False
    )
    assert code == 0, rows
    for item, row in zip(items, rows, strict=True):
        text = row["text_translated"].lower()
        assert any(k in text for k in item["keywords"]), (item["english"], text)
        assert row["text_asr"] != row["text_translated"]  # Spanish heard, English out


async def test_no_node_for_a_pair_then_a_node_with_it_joins(
    cluster: LocalCluster, shared_models: Path, tiny_nmt: Path, tmp_path: Path
) -> None:
    Catalog(cluster.work / "hub-store").publish_dir(
        tiny_nmt,
        {
            "model_id": "tiny-m2m100",
            "version": "1",
            "kind": "nmt",
            "engine": "transformers",
            "src_lang": "en",
            "tgt_lang": "zh",
        },
    )
    cluster.start_hub()
    cluster.start_scheduler()
    cluster.wait_node_ready(cluster.start_node("plain"))
    code, rows = await send_files(cluster.session_url, [SPEECH / "weather.wav"], "en", "zh")
    assert code == 1
    assert rows[0]["error"] == "NO_AVAILABLE_NODE"
    assert "en->zh" in rows[0]["message"]

    own = models_with_whisper(shared_models, tmp_path / "nmt-node-models")
    install = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "lingua_node",
            "models",
            "install",
            "tiny-m2m100",
            "--hub",
            cluster.hub_url,
            "--models-dir",
            str(own),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert install.returncode == 0, install.stderr
    nmt_cluster = LocalCluster(cluster.work, models_dir=own)
    nmt_cluster.scheduler_port, nmt_cluster.hub_port = cluster.scheduler_port, cluster.hub_port
    try:
        cluster.wait_node_ready(nmt_cluster.start_node("with-nmt"))
        code, rows = await send_files(cluster.session_url, [SPEECH / "weather.wav"], "en", "zh")
        assert code == 0, rows
        assert "sunny" in rows[0]["text_asr"]
        assert isinstance(rows[0]["text_translated"], str)  # random weights: any text
        assert rows[0]["service_timings"]["nmt_ms"] > 0
    finally:
        nmt_cluster.stop()
