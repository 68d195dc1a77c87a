"""Scheduler settings: defaults here, then a TOML file, then LINGUA_SCHEDULER_* variables, then
CLI flags. Every default is documented in docs/scheduler.md."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LINGUA_SCHEDULER_", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    """`auto`: uvloop when it is installed (a dependency everywhere but Windows), else asyncio's
    own loop."""
    port: int = 5010
    heartbeat_interval_s: float = 15.0
    missed_heartbeats_offline: int = 3
    ack_timeout_s: float = 5.0
    job_timeout_s: float = 30.0
    job_timeout_per_audio_s: float = 1.0
    max_attempts: int = 3
    queue_timeout_s: float = 10.0
    max_queue: int = 1000
    result_gap_timeout_s: float = 5.0
    resume_grace_s: float = 60.0
    session_idle_timeout_s: float = 600.0
    sticky_nodes: bool = True
    degraded_cpu_percent: float = 95.0
    degraded_mem_percent: float = 95.0
    degraded_gpu_mem_percent: float = 95.0
    max_message_bytes: int = 8 * 1024 * 1024
    utterances_per_s: float = 10.0
    utterance_burst: int = 20
    pairing_code_ttl_s: float = 300.0
    room_max_members: int = 16
    room_idle_timeout_s: float = 1800.0
    offline_node_retention_s: float = 300.0
    # Flow control and memory budgets (docs/scheduler.md, "Limits").
    utterance_index_window: int = Field(default=256, ge=1)
    max_in_flight_utterances: int = Field(default=32, ge=1)
    max_in_flight_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    max_queue_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    session_hold_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    replay_buffer_bytes: int = Field(default=2 * 1024 * 1024, ge=0)
    peer_outbox_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    # Streaming (docs/scheduler.md, "Streaming").
    streaming_enabled: bool = True
    """Grant `enable_streaming_asr` to sessions that ask; off: their ack says `streaming: false`
    and they send whole utterances."""
    partial_update_interval_ms: int = Field(default=1000, ge=1)
    """The interval between partials asked of nodes when a session states none."""
    min_partial_update_interval_ms: int = Field(default=200, ge=1)
    max_partial_update_interval_ms: int = Field(default=5000, ge=1)
    """A session's requested interval is clamped to [min, max]: below ~200 ms a CPU node
    re-decodes more often than it can, above 5 s a partial is no longer live."""
    max_stream_ms: int = Field(default=30_000, ge=100)
    """Longest streamed utterance (milliseconds of audio); the chunk that goes past it ends the
    utterance with MESSAGE_TOO_LARGE. Bounds the audio kept per open stream for failover."""
    max_chunk_bytes: int = Field(default=256 * 1024, ge=2)
    """Largest `audio_chunk` payload (decoded); more: MESSAGE_TOO_LARGE for the index."""
    max_stream_chunks: int = Field(default=3000, ge=1)
    """Most chunks in one streamed utterance (30 s in 10 ms chunks); more: MESSAGE_TOO_LARGE.
    Every chunk becomes a `job_audio` to a node, so tiny chunks must not be free."""
    stream_close_grace_s: float = Field(default=10.0, gt=0)
    """An open stream must see its final chunk within `max_stream_ms` plus this after its
    first chunk; otherwise it ends with JOB_TIMEOUT (a client that stops sending cannot hold
    a node's stream slot and the session's window for ever)."""
    node_token: str | None = Field(default=None, validation_alias="LINGUA_NODE_TOKEN")
    admin_token: str | None = None
    """Operator token (`Authorization: Bearer ...`) for /ws/admin and the full cluster view;
    unset: /ws/admin is off and /api/v1/cluster shows only the public summary."""
    seed: int | None = None

    # --- security (docs/security.md) ---
    state_path: Path | None = None
    """SQLite file for node credentials; unset: bindings last as long as the process."""
    max_register_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    """Largest `node_register` / `node_heartbeat` frame (the scheduler keeps a node's register
    while it knows the node); more: MESSAGE_TOO_LARGE and the message is not applied."""
    max_node_credentials: int = Field(default=100_000, gt=0)
    new_node_ids_per_hour: float = Field(default=100.0, gt=0)
    """Node ids one address may register for the first time per hour (burst as many), so no
    one fills `max_node_credentials` and locks new nodes out."""
    wrong_codes_per_min: float = Field(default=5.0, gt=0)
    """Wrong room/pairing codes one client address may send per minute (burst as many)."""
    wrong_codes_per_min_total: float = Field(default=120.0, gt=0)
    """Wrong room/pairing codes from all addresses together per minute."""
    node_heartbeats_per_s: float = Field(default=1.0, gt=0)
    node_heartbeat_burst: float = Field(default=10.0, gt=0)
    pairing_requests_per_min: float = Field(default=6.0, gt=0)
    rate_limit_max_keys: int = Field(default=10_000, gt=0)
    """Buckets held per rate limit; beyond it new keys share one bucket."""
    admin_failures_per_min: float = Field(default=5.0, gt=0)
    """Wrong operator tokens one address may send per minute before it is locked out."""
    session_origins: list[str] = Field(default_factory=lambda: ["*"])
    """Origins allowed on /ws/session ("*": any; a request without Origin is always allowed)."""
    operator_origins: list[str] = Field(default_factory=list)
    """Origins allowed on /ws/node and /ws/admin; a request with any other Origin is refused."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses of reverse proxies whose `X-Forwarded-For` names the client (for limits kept
    per address); empty: the socket's peer address is the client's."""
    first_message_timeout_s: float = Field(default=10.0, gt=0)
    """Time a /ws/* connection has to register (node) or open a session (client)."""
    max_connections: int = Field(default=4096, gt=0)
    """WebSocket connections at once; more get HTTP 503 before the upgrade."""
    tls_certfile: Path | None = None
    """PEM certificate chain: with `tls_keyfile`, the scheduler serves wss:// and https://."""
    tls_keyfile: Path | None = None
    max_connections_per_address: int = Field(default=256, gt=0)
    """WebSocket connections at once from one client address; more get HTTP 429."""
    limit_log_interval_s: float = Field(default=60.0, gt=0)
    """A limit that is hit logs one line per this interval (with the count), not one per event."""
    peer_parse_ms_per_s: float = Field(default=200.0, gt=0)
    """Event-loop time one connection's messages may take to parse, per second; a connection
    over it is not read until it is back under (`parse_budget.py`)."""
    peer_parse_burst_ms: float = Field(default=100.0, gt=0)
    """How much parse time a connection may spend at once before the rate applies."""

    # --- cluster (docs/operations.md) ---
    redis_url: str | None = None
    """`redis://HOST:6379/0`: this instance joins the cluster that shares this Redis (several
    instances behind any load balancer); unset: one scheduler, everything in memory."""
    cluster_ack_hold_ms: float = Field(default=2.0, ge=0, le=50)
    """How long a node's `job_ack` for a job another instance assigned is held before it is
    relayed, so that an answer ready at once crosses with it in one inbox entry (one Redis
    round trip fewer for the assigning instance); nothing else waits. 0: relayed at once. At
    most 50 ms, far below `ack_timeout_s`."""

    @classmethod
    def load(cls, config: Path | None = None, **overrides: Any) -> SchedulerSettings:
        """Defaults < TOML file < environment < explicit overrides (CLI flags)."""
        file_values: dict[str, Any] = {}
        if config is not None:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
            file_values = dict(data.get("scheduler", data))
        env = cls()
        merged = {**file_values}
        for name in cls.model_fields:
            if name in env.model_fields_set:
                merged[name] = getattr(env, name)
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(merged)

    def public_dict(self) -> dict[str, Any]:
        """Settings for logs and the cluster API, without secrets."""
        data = self.model_dump(mode="json")
        data["node_token"] = "set" if self.node_token else None
        data["admin_token"] = "set" if self.admin_token else None
        data["redis_url"] = _without_password(self.redis_url)
        return data


def _without_password(url: str | None) -> str | None:
    """A Redis URL for logs: `redis://:secret@host` shows as `redis://***@host`."""
    if url is None or "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
