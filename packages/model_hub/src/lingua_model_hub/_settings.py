"""Hub settings: flags over `LINGUA_HUB_*` environment variables over defaults.

Every limit below is listed, with its error, in the "Limits" section of `docs/model_hub.md`.
"""

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

    max_upload_bytes: int = Field(default=8 * 2**30, gt=0)
    """A publish's whole request body; a larger `Content-Length` is refused (413) before one
    byte of the body is read."""
    max_meta_bytes: int = Field(default=64 * 2**10, gt=0)
    """The `meta` JSON field of a publish (400 when larger)."""
    max_files: int = Field(default=1000, gt=0)
    """Files in one model version (400 when more)."""
    max_part_header_bytes: int = Field(default=8 * 2**10, gt=0)
    """The headers of one multipart part together (a file's name is in them; 400 when
    larger)."""

    header_timeout_s: float = Field(default=10.0, gt=0)
    """From a connection's first byte (or its opening) to the end of a request's headers: a
    connection that sends its headers slowly (slowloris) is closed when it runs out."""
    keep_alive_timeout_s: float = Field(default=5.0, gt=0)
    """An idle keep-alive connection between two requests is closed after this."""
    body_timeout_s: float = Field(default=30.0, gt=0)
    """The longest wait for the next piece of a publish's body (408 when it runs out)."""
    max_connections: int = Field(default=1000, gt=0)
    """Open HTTP connections. Beyond it, the oldest connection that has no request in progress
    is closed to make room; with every connection busy, the new one gets 503. Lowered at start
    to what the process's open-file limit allows (minus 64 for the store and the database)."""
    max_header_bytes: int = Field(default=16 * 2**10, gt=0)
    """A request line and headers together (h11's incomplete-event limit; 400 when larger)."""
