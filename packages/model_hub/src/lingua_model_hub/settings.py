"""Hub settings: flags over `LINGUA_HUB_*` environment variables over defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINGUA_HUB_", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 5000
    store: Path = Path("hub-store")
    token: str | None = Field(default=None, validation_alias="LINGUA_HUB_TOKEN")
    max_upload_bytes: int = 8 * 2**30
