"""English speech through the real system; speech translation into English; a pair nobody
serves, then served once a node with that pair joins (its model installed from the hub)."""

from __future__ import annotations

import json
import wave
from pathlib import Path

from lingua_client import LocalCluster

from .e2e_support import (
    SPEECH,
    install_from_hub,
    models_with_whisper,
    publish_tiny_nmt,
    send_files,
)


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
    publish_tiny_nmt(cluster, tiny_nmt)
    cluster.start_hub()
    cluster.start_scheduler()
    cluster.wait_node_ready(cluster.start_node("plain"))
    code, rows = await send_files(cluster.session_url, [SPEECH / "weather.wav"], "en", "zh")
    assert code == 1
    assert rows[0]["error"] == "NO_AVAILABLE_NODE"
    assert "en->zh" in rows[0]["message"]

    own = models_with_whisper(shared_models, tmp_path / "nmt-node-models")
    await install_from_hub(cluster, "tiny-m2m100", own)
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
