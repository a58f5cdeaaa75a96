"""The Origin allow-list (realtime.origin), the first layer of the WebSocket stack."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from realtime.protocol import CloseCode
from tests.realtime.conftest import (
    SUBPROTOCOL,
    access_token_for,
    assert_not_logged,
    headers_for,
    log_messages,
    ticket_for,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def refusal_reasons(caplog) -> list[str]:
    return [m for m in log_messages(caplog, "realtime.security") if "ws refused" in m]


async def assert_open(comm) -> None:
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        # Compared without a trailing slash and without case, as browsers may send either.
        "http://localhost:8000/",
        "HTTP://LOCALHOST:8000",
    ],
)
async def test_allowed_origin_passes(sockets, user, origin):
    access = await access_token_for(user)
    await assert_open(sockets.communicator(headers=headers_for(access, origin)))


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "http://127.0.0.1:8001",
        "https://127.0.0.1:8000",
        "http://localhost:8000.evil.example",
        "null",
        "",
    ],
)
async def test_foreign_origin_is_refused_4403_even_with_a_valid_token(
    sockets, user, realtime_logs, origin
):
    access = await access_token_for(user)
    assert await sockets.refused(headers=headers_for(access, origin)) == CloseCode.FORBIDDEN
    reasons = refusal_reasons(realtime_logs)
    assert len(reasons) == 1
    assert "reason=origin_not_allowed" in reasons[0]
    assert_not_logged(realtime_logs, access)


async def test_origin_is_checked_before_credentials(sockets, realtime_logs, db):
    # A cross-site page learns nothing about credentials: it always gets 4003.
    code = await sockets.refused(headers=headers_for(None, "http://evil.example"))
    assert code == CloseCode.FORBIDDEN
    assert "reason=origin_not_allowed" in refusal_reasons(realtime_logs)[0]


async def test_configured_origin_list_replaces_the_default(sockets, user):
    access = await access_token_for(user)
    realtime = {**settings.REALTIME, "ALLOWED_ORIGINS": ["https://chat.example.com/"]}
    with override_settings(REALTIME=realtime):
        await assert_open(
            sockets.communicator(headers=headers_for(access, "https://chat.example.com"))
        )
        code = await sockets.refused(headers=headers_for(access, "http://127.0.0.1:8000"))
    assert code == CloseCode.FORBIDDEN


async def test_missing_origin_is_allowed_with_an_authorization_header(
    sockets, user, realtime_logs
):
    access = await access_token_for(user)
    await assert_open(sockets.communicator(headers=headers_for(access, origin=None)))
    assert refusal_reasons(realtime_logs) == []


async def test_missing_origin_with_subprotocol_auth_is_refused_4403(sockets, user, realtime_logs):
    access = await access_token_for(user)
    comm = sockets.communicator(
        headers=headers_for(origin=None), subprotocols=[SUBPROTOCOL, f"bearer.{access}"]
    )
    connected, subprotocol = await comm.connect()
    assert connected
    assert subprotocol == SUBPROTOCOL
    assert (await comm.receive_output())["code"] == CloseCode.FORBIDDEN
    assert "reason=origin_missing" in refusal_reasons(realtime_logs)[0]
    assert_not_logged(realtime_logs, access)


async def test_missing_origin_with_ticket_auth_is_refused_4403(sockets, user, realtime_logs):
    ticket = await ticket_for(user)
    code = await sockets.refused(f"/ws/chat/?ticket={ticket}", headers_for(origin=None))
    assert code == CloseCode.FORBIDDEN
    assert "reason=origin_missing" in refusal_reasons(realtime_logs)[0]
    assert_not_logged(realtime_logs, ticket)


async def test_missing_origin_is_refused_when_header_exception_is_off(
    sockets, user, realtime_logs
):
    access = await access_token_for(user)
    realtime = {**settings.REALTIME, "ALLOW_NO_ORIGIN_WITH_HEADER_AUTH": False}
    with override_settings(REALTIME=realtime):
        code = await sockets.refused(headers=headers_for(access, origin=None))
        assert code == CloseCode.FORBIDDEN
        # The same client with an allowed Origin still gets in.
        await assert_open(sockets.communicator(headers=headers_for(access)))
    assert "reason=origin_missing" in refusal_reasons(realtime_logs)[0]
    assert_not_logged(realtime_logs, access)


def same_origin(enabled: bool) -> override_settings:
    return override_settings(
        REALTIME={**settings.REALTIME, "ALLOW_SAME_ORIGIN": enabled},
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "chat.example"],
    )


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://127.0.0.1:8765", "127.0.0.1:8765"),
        ("http://localhost:9000", "localhost:9000"),
        ("https://chat.example", "chat.example"),
    ],
)
async def test_a_page_served_by_this_host_may_open_a_socket_when_allowed(
    sockets, user, origin, host
):
    access = await access_token_for(user)
    headers = [*headers_for(access, origin), (b"host", host.encode())]
    with same_origin(True):
        await assert_open(sockets.communicator(headers=headers))


@pytest.mark.parametrize(
    ("origin", "host", "enabled"),
    [
        # Another port, another scheme, another host: not the same origin.
        ("http://127.0.0.1:8765", "127.0.0.1:8766", True),
        ("http://evil.example", "127.0.0.1:8765", True),
        # DNS rebinding: the attacker's name resolves to us, so Origin and Host agree; the
        # host is not one of ALLOWED_HOSTS.
        ("http://evil.example:8765", "evil.example:8765", True),
        ("ftp://127.0.0.1:8765", "127.0.0.1:8765", True),
        # Production: off, only the listed origins.
        ("http://127.0.0.1:8765", "127.0.0.1:8765", False),
    ],
)
async def test_same_origin_is_checked_strictly(
    sockets, user, realtime_logs, origin, host, enabled
):
    access = await access_token_for(user)
    headers = [*headers_for(access, origin), (b"host", host.encode())]
    with same_origin(enabled):
        assert await sockets.refused(headers=headers) == CloseCode.FORBIDDEN
