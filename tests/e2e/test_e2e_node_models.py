"""A Whisper model installed from the hub while a node process runs: the node advertises it
(the scheduler's cluster view lists it), uses it for the language it was published for, and,
once it is removed, stops advertising and using it. No restart. Real hub, scheduler and node
processes, the real embedded Whisper republished under another id and version."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lingua_client import LocalCluster
from lingua_model_hub import Catalog
from lingua_node import ModelStore
from lingua_protocol import PipelineConfig
from lingua_scheduler.testing import ScriptedClient

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech"
TEXT_ONLY = PipelineConfig(use_asr=True, use_nmt=False, use_tts=False)


def asr_models(cluster: LocalCluster, node_id: str) -> set[str]:
    for node in cluster.cluster()["nodes"]:
        if node["node_id"] == node_id:
            return {
                m["model_id"]
                for m in node.get("installed_models", [])
                if m["kind"] == "asr" and m.get("enabled") is not False
            }
    return set()


async def until_models(cluster: LocalCluster, node_id: str, wanted: set[str]) -> None:
    """The cluster view lists exactly `wanted` as the node's ASR models (polled, 180 s)."""
    async with asyncio.timeout(180):
        while asr_models(cluster, node_id) != wanted:  # noqa: ASYNC110  (another process's view)
            await asyncio.sleep(0.2)


async def hear(cluster: LocalCluster, clip: str, lang: str) -> Any:
    client = ScriptedClient(cluster.session_url, lang, lang)
    await client.start()
    try:
        audio = (SPEECH / clip).read_bytes()
        await client.utter(0, audio=audio, audio_format="wav", pipeline=TEXT_ONLY)
        return (await client.recv_until(1, ("translation_result", "error"), timeout_s=120))[0]
    finally:
        await client.close()


async def test_a_whisper_installed_while_the_node_runs_is_served_then_removed(
    cluster: LocalCluster, shared_models: Path, tmp_path: Path
) -> None:
    Catalog(cluster.work / "hub-store").publish_dir(
        shared_models / "whisper-base",
        {
            "model_id": "whisper-base-es",
            "version": "2",
            "kind": "asr",
            "engine": "faster-whisper",
            "languages": ["es"],
        },
    )
    cluster.start_hub()
    cluster.start_scheduler()
    own = tmp_path / "node-models"  # the node's own store; the embedded Whisper shared
    own.mkdir()
    (own / "whisper-base").symlink_to(shared_models / "whisper-base", target_is_directory=True)
    node_cluster = LocalCluster(cluster.work, models_dir=own)
    node_cluster.scheduler_port, node_cluster.hub_port = cluster.scheduler_port, cluster.hub_port
    try:
        node_id = cluster.wait_node_ready(node_cluster.start_node("hub-node", heartbeat_s=0.5))
        assert asr_models(cluster, node_id) == {"whisper-base"}

        store = ModelStore(own)
        await asyncio.to_thread(store.install, cluster.hub_url, "whisper-base-es")
        await until_models(cluster, node_id, {"whisper-base", "whisper-base-es"})
        spanish = await hear(cluster, "es_station.wav", "es")
        assert spanish.type == "translation_result", spanish
        assert spanish.extra.asr_model == "whisper-base-es"
        assert "estación" in spanish.text_asr.lower()
        english = await hear(cluster, "weather.wav", "en")
        assert english.extra.asr_model == "whisper-base"
        assert "sunny" in english.text_asr

        assert store.remove("whisper-base-es")
        await until_models(cluster, node_id, {"whisper-base"})
        again = await hear(cluster, "es_station.wav", "es")
        assert again.type == "translation_result"
        assert "estación" in again.text_asr.lower()
        assert again.extra is None or again.extra.asr_model is None  # one model: not named
    finally:
        node_cluster.stop()
