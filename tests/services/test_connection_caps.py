"""Caps on open sockets per user and per client address hold across daphne processes, and
the sockets of a killed process stop counting within the slots' TTL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosed

from tests.services.support.api import Api
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import refused_with, request, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

SLOT_TTL_SECONDS = 3


@pytest.fixture
def capped_pair(
    start_redis: Callable[[], RedisServer], start_server: Callable[..., Server]
) -> tuple[Server, Server]:
    """Two processes on one Redis: 2 sockets per user, 3 per address, 3-second slots."""
    redis = start_redis()
    caps = {
        "WS_MAX_CONNECTIONS_PER_USER": "2",
        "WS_MAX_CONNECTIONS_PER_ADDRESS": "3",
        "WS_CONNECTION_TTL_SECONDS": str(SLOT_TTL_SECONDS),
    }
    return (
        start_server(redis.url, name="capped-a", **caps),
        start_server(redis.url, name="capped-b", **caps),
    )


async def test_the_users_cap_counts_sockets_on_every_process(
    capped_pair: tuple[Server, Server],
) -> None:
    a, b = capped_pair
    account = Api(a).account()
    async with ws_connect(a, token=account.access), ws_connect(b, token=account.access):
        assert await refused_with(ws_connect(a, token=account.access)) == 4009
        assert await refused_with(ws_connect(b, token=account.access)) == 4009
    # Closing frees the slots at once.
    async with ws_connect(b, token=account.access) as ws:
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"
    refusals = [r for r in a.log_records() + b.log_records() if "user_full" in r["message"]]
    assert len(refusals) == 2


async def test_the_address_cap_counts_every_user_behind_one_address(
    capped_pair: tuple[Server, Server],
) -> None:
    a, b = capped_pair
    api = Api(a)
    users = [api.account() for _ in range(4)]
    async with contextlib.AsyncExitStack() as stack:
        for n, account in enumerate(users[:3]):
            await stack.enter_async_context(ws_connect((a, b)[n % 2], token=account.access))
        assert await refused_with(ws_connect(b, token=users[3].access)) == 4009


async def test_the_sockets_of_a_killed_process_stop_counting_within_the_ttl(
    capped_pair: tuple[Server, Server],
) -> None:
    doomed, survivor = capped_pair
    account = Api(survivor).account()
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            await stack.enter_async_context(ws_connect(doomed, token=account.access))
        assert await refused_with(ws_connect(survivor, token=account.access)) == 4009
        doomed.kill()
        killed_at = time.monotonic()
        # The dead process renews nothing: its two slots expire, and the user gets back in.
        while True:
            code = await refused_with_or_open(survivor, account.access)
            if code is None:
                break
            assert code == 4009
            assert time.monotonic() - killed_at < SLOT_TTL_SECONDS + 5, "slots never expired"
            await asyncio.sleep(0.5)


async def refused_with_or_open(server: Server, token: str) -> int | None:
    """The close code of a refused handshake, or None when the socket was admitted."""
    async with ws_connect(server, token=token) as ws:
        try:
            reply = await request(ws, {"type": "ping"})
        except ConnectionClosed as closed:
            # None (no close frame at all) fails the caller's comparison with 4009.
            return closed.rcvd and closed.rcvd.code
        assert reply["type"] == "pong", reply
        return None


async def test_caps_hold_while_live_sockets_are_renewed(
    capped_pair: tuple[Server, Server],
) -> None:
    # Long-lived sockets keep their slots: the renewals (every third of the TTL) work.
    a, b = capped_pair
    account = Api(a).account()
    async with ws_connect(a, token=account.access), ws_connect(b, token=account.access):
        await asyncio.sleep(SLOT_TTL_SECONDS * 2)
        assert await refused_with(ws_connect(a, token=account.access)) == 4009
