"""Helpers shared by the client tests (imported by name, so not in conftest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from lingua_protocol.audio import read_wav
from lingua_scheduler import SchedulerServer
from lingua_scheduler.testing import ScriptedNode

SPEECH = Path(__file__).resolve().parents[3] / "tests" / "data" / "speech"


def clip(name: str, trim_pads: bool = False) -> np.ndarray:
    audio, rate = read_wav(SPEECH / name)
    assert rate == 16000
    return audio[4000:-4000] if trim_pads else audio


class Sched:
    def __init__(self, server: SchedulerServer) -> None:
        self.server = server
        self.session_url = f"ws://127.0.0.1:{server.port}/ws/session"
        self.node_url = f"ws://127.0.0.1:{server.port}/ws/node"
        self.nodes: list[ScriptedNode] = []

    async def node(self, node_id: str = "n1", **kw: Any) -> ScriptedNode:
        node = ScriptedNode(self.node_url, node_id, pairs=[("en", "en"), ("auto", "en")], **kw)
        await node.start()
        self.nodes.append(node)
        return node
