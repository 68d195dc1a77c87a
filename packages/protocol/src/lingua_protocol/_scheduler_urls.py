"""Several scheduler URLs for one peer (`--scheduler ws://a/ws/node,ws://b/ws/node`).

Scheduler instances of one cluster share their state through Redis, so a node may register,
and a client open or resume a session, with any of them. The connection shells (the node's
agent, the client's connection) dial the current URL and, when that connection fails or
drops, move to the next one (round robin) with the backoff they already have, so an instance
that died or refuses upgrades (HTTP 503 while it cannot reach Redis) is left at once. Kept in
the protocol package because both peers' shells use it.
"""

from __future__ import annotations


def split_urls(value: str) -> list[str]:
    """The URLs in a comma-separated `--scheduler` value, in order, blanks dropped; raises
    ValueError when there is none."""
    urls = [part.strip() for part in value.split(",") if part.strip()]
    if not urls:
        raise ValueError("no scheduler URL given")
    return urls


class UrlRotation:
    """Which of several URLs to dial next: the same one while it works, the next after a
    failure (wrapping around)."""

    def __init__(self, urls: list[str]) -> None:
        if not urls:
            raise ValueError("no scheduler URL given")
        self.urls = list(urls)
        self._at = 0

    @property
    def current(self) -> str:
        return self.urls[self._at]

    def failed(self) -> str:
        """The current URL failed or its connection dropped: move on; returns the next URL."""
        self._at = (self._at + 1) % len(self.urls)
        return self.current
