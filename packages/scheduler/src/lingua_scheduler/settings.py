"""Scheduler settings: defaults here, then a TOML file, then LINGUA_SCHEDULER_* variables, then
CLI flags. Every default is documented in docs/scheduler.md."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LINGUA_SCHEDULER_", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
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
    pairing_failures_per_min: int = 5
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
    node_token: str | None = Field(default=None, validation_alias="LINGUA_NODE_TOKEN")
    admin_token: str | None = None  # for /ws/admin; unset: operators only from this machine
    seed: int | None = None

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
        data = self.model_dump()
        data["node_token"] = "set" if self.node_token else None
        data["admin_token"] = "set" if self.admin_token else None
        return data
