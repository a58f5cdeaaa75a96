"""A worker dies with SIGKILL: its clients see a drop, reconnect elsewhere and lose nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.services.support.api import Api
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import (
    ids,
    join,
    message_by_id,
    post,
    read_until_closed,
    request,
    ws_connect,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

# No close frame ever arrived: RFC 6455's code for a connection that just vanished.
ABNORMAL_CLOSURE = 1006


async def test_killed_worker_clients_reconnect_to_the_survivor_without_loss(
    redis_server: RedisServer, start_server: Callable[..., Server]
) -> None:
    doomed = start_server(redis_server.url, name="doomed")
    survivor = start_server(redis_server.url, name="survivor")
    api = Api(survivor)
    alice, bob, carol = api.account("alice"), api.account("bob"), api.account("carol")
    room = api.room(alice)

    acked: list[int] = []
    async with (
        ws_connect(doomed, token=alice.access) as alice_ws,
        ws_connect(doomed, token=carol.access) as carol_ws,
        ws_connect(survivor, token=bob.access) as bob_ws,
    ):
        for ws in (alice_ws, carol_ws, bob_ws):
            await join(ws, room)
        for n in range(5):
            acked.append(await post(alice_ws, room, f"alice {n}"))
            acked.append(await post(bob_ws, room, f"bob {n}"))
        await message_by_id(carol_ws, acked[-1])

        doomed.kill()
        for ws in (alice_ws, carol_ws):
            _, closed = await read_until_closed(ws, within=10)
            assert closed is None
            assert ws.close_code == ABNORMAL_CLOSURE

        # The survivor never noticed: its socket still works.
        assert (await request(bob_ws, {"type": "ping"}))["type"] == "pong"

        async with (
            ws_connect(survivor, token=alice.access) as alice_ws,
            ws_connect(survivor, token=carol.access) as carol_ws,
        ):
            history = (await join(alice_ws, room))["history"]
            assert set(acked) <= set(ids(history))
            await join(carol_ws, room)

            later = await post(alice_ws, room, "after the crash")
            received = await asyncio.gather(
                message_by_id(bob_ws, later), message_by_id(carol_ws, later)
            )
            assert [m["body"] for m in received] == ["after the crash"] * 2

    assert survivor.alive()
    assert Api(survivor).health().status == 200
