"""A test-double scheduler: a real WebSocket server that records what a node sends and lets the
test send it jobs and controls. For the node's tests only."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from lingua_protocol import (
    JobAck,
    JobResult,
    Message,
    NodeHeartbeat,
    NodeRegister,
    NodeRegisterAck,
    PairingCode,
    PairingCodeRequest,
    parse_node_message,
)
from websockets.asyncio.server import Server, ServerConnection, serve


class ScriptedScheduler:
    def __init__(self, port: int = 0, hand_credential: str | None = None) -> None:
        """`hand_credential`: sent in the ack to a node that registers without one."""
        self.port = port
        self.hand_credential = hand_credential
        self.server: Server | None = None
        self.ws: ServerConnection | None = None
        self.registers: list[NodeRegister] = []
        self.heartbeats: list[tuple[float, NodeHeartbeat]] = []
        self.acks: list[JobAck] = []
        self.results: list[JobResult] = []
        self.other: list[Message] = []
        self.connected = asyncio.Event()
        self.changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/node"

    async def start(self) -> None:
        self.server = await serve(self._handle, "127.0.0.1", self.port, max_size=None)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        self.connected.clear()

    async def _handle(self, ws: ServerConnection) -> None:
        async for data in ws:
            message = parse_node_message(data)
            if isinstance(message, NodeRegister):
                self.registers.append(message)
                self.ws = ws
                handed = None if message.node_credential else self.hand_credential
                ack = NodeRegisterAck(
                    node_id=message.node_id or "?",
                    status="ready",
                    binary_audio=False,
                    node_credential=handed,
                )
                await ws.send(ack.to_json())
                self.connected.set()
            elif isinstance(message, NodeHeartbeat):
                self.heartbeats.append((time.monotonic(), message))
            elif isinstance(message, JobAck):
                self.acks.append(message)
            elif isinstance(message, JobResult):
                self.results.append(message)
            elif isinstance(message, PairingCodeRequest):
                await ws.send(
                    PairingCode(code="123456", node_id=message.node_id, expires_in_s=300).to_json()
                )
            else:
                self.other.append(message)
            self.changed.set()

    async def send(self, message: Message) -> None:
        assert self.ws is not None
        await self.ws.send(message.to_json())

    async def wait_for(self, predicate: Any, timeout_s: float = 30.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()
