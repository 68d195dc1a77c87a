"""Check `--scheduler` before anything connects, so a typo gets one line and exit status 2
instead of a traceback from deep inside the WebSocket library."""

from __future__ import annotations

from urllib.parse import urlsplit

from lingua_protocol import split_urls

EXAMPLE = "ws://127.0.0.1:5010/ws/session"


class BadSchedulerUrl(ValueError):
    """The `--scheduler` value cannot be a scheduler's session endpoint; the message says
    what to type instead."""


def check_scheduler_url(url: str) -> str:
    """Return `url` stripped when it can be a session endpoint (ws:// or wss://, a host, the
    path `/ws/session` or one ending in it behind a proxy), or a comma-separated list of such
    endpoints (instances of one cluster, see `scheduler_urls`); raise `BadSchedulerUrl`
    otherwise."""
    if "," in url:
        try:
            urls = split_urls(url)
        except ValueError:
            raise BadSchedulerUrl(f"--scheduler {url!r} names no URL; e.g. {EXAMPLE}") from None
        return ",".join(_check_one(u) for u in urls)
    return _check_one(url)


def _check_one(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme in ("http", "https"):
        scheme = "ws" if parts.scheme == "http" else "wss"
        raise BadSchedulerUrl(
            f"--scheduler {url!r}: use {scheme}:// not {parts.scheme}://, "
            f"e.g. {scheme}://{parts.netloc or '127.0.0.1:5010'}/ws/session"
        )
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise BadSchedulerUrl(f"--scheduler {url!r} is not a WebSocket URL; e.g. {EXAMPLE}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise BadSchedulerUrl(f"--scheduler {url!r}: the port is not a number") from None
    if not parts.hostname:
        raise BadSchedulerUrl(f"--scheduler {url!r} names no host; e.g. {EXAMPLE}")
    if not parts.path.rstrip("/").endswith("/ws/session"):
        raise BadSchedulerUrl(
            f"--scheduler {url!r}: the session endpoint is /ws/session, "
            f"e.g. {parts.scheme}://{parts.netloc}/ws/session"
        )
    return url.strip()
