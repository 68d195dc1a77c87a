"""Several scheduler URLs: the client moves on to the next instance when one fails."""

from __future__ import annotations

import socket

import pytest
from lingua_client._scheduler_url import BadSchedulerUrl, check_scheduler_url
from lingua_protocol import UrlRotation, split_urls

from .client_support import Reports, Sched, reconnecting_session


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_comma_separated_list_is_checked_url_by_url() -> None:
    both = "ws://a:5010/ws/session, ws://b:5010/ws/session"
    assert check_scheduler_url(both) == "ws://a:5010/ws/session,ws://b:5010/ws/session"
    with pytest.raises(BadSchedulerUrl, match="http://"):
        check_scheduler_url("ws://a:5010/ws/session,http://b:5010/ws/session")
    with pytest.raises(BadSchedulerUrl, match="names no URL"):
        check_scheduler_url(" , ")


def test_rotation_moves_on_after_a_failure_and_wraps() -> None:
    rotation = UrlRotation(split_urls("a,b"))
    assert rotation.current == "a"
    assert rotation.failed() == "b"
    assert rotation.failed() == "a"


async def test_session_opens_on_the_second_url_when_the_first_is_down(sched: Sched) -> None:
    dead = f"ws://127.0.0.1:{_closed_port()}/ws/session"
    reports = Reports()
    conn = reconnecting_session(f"{dead},{sched.session_url}", reports, start_attempts=2)
    try:
        ack = await conn.start()
        assert ack.session_id
        assert conn.url == sched.session_url
    finally:
        await conn.close()
