"""A worker stopped for a deploy (SIGTERM) says goodbye: every socket gets close 1001.

Stock daphne drops its sockets on SIGTERM, which clients see as 1006, the same as a crash;
`manage.py serve` closes each one with 1001 (going away) first, so clients know to
reconnect to another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from realtime.protocol import CloseCode
from tests.services.support.api import Api
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import expect_closed, join, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

SOCKETS = 20


async def test_sigterm_closes_every_socket_with_going_away(
    redis_server: RedisServer, start_server: Callable[..., Server]
) -> None:
    server = start_server(redis_server.url, name="deployed")
    api = Api(server)
    alice = api.account("alice")
    room = api.room(alice)

    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(ws_connect(server, token=alice.access))
            for _ in range(SOCKETS)
        ]
        for ws in sockets[::2]:
            await join(ws, room)

        server.stop()  # SIGTERM, as systemd sends it

        closes = await asyncio.gather(*(expect_closed(ws) for ws in sockets))
    assert [close and close.code for close in closes] == [CloseCode.GOING_AWAY] * SOCKETS
    assert server.proc.returncode == 0
    assert any(f"closed {SOCKETS} sockets with 1001" in r["message"] for r in server.log_records())


async def test_plain_daphne_drops_its_sockets_on_sigterm_as_documented(
    redis_server: RedisServer, start_server: Callable[..., Server]
) -> None:
    # docs/deployment.md: the difference plain daphne makes, shown rather than assumed.
    server = start_server(redis_server.url, name="plain-deployed", runner="daphne")
    account = Api(server).account()
    async with ws_connect(server, token=account.access) as ws:
        server.stop()
        close = await expect_closed(ws)
    assert close is None, "plain daphne now says goodbye: update docs/deployment.md"
    assert ws.close_code == 1006
