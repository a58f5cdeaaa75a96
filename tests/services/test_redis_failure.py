"""Redis goes away and comes back under a live daphne: documented answers, then recovery.

Two cases. Down past REDIS_OUTAGE_GRACE_SECONDS: every socket is closed with 4013 (it cannot
hear its rooms), handshakes are refused with 4013, and all is served again once Redis is
back. Down for less (a restart): the sockets stay open, and what was said meanwhile reaches
every one of them, once, when the layer's subscriptions come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

import pytest

from realtime.protocol import CloseCode
from tests.services.support.api import Api
from tests.services.support.common import PASSWORD, wait_until
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import (
    ids,
    join,
    message_by_id,
    next_message,
    post,
    read_until_closed,
    refused_with,
    ws_connect,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

# Failures must surface quickly: the outage grace is 3 s, the layer's socket timeouts 2 s
# (connect) and 5 s.
OUTAGE_ANSWER_TIMEOUT = 15.0
IDLE_SOCKETS = 30


async def test_redis_outage_is_answered_and_survived(
    start_redis: Callable[[], RedisServer], start_server: Callable[..., Server]
) -> None:
    redis_server = start_redis()
    server = start_server(redis_server.url, name="outage")
    api = Api(server)
    assert api.health().body == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    alice, bob = api.account("alice"), api.account("bob")
    room = api.room(alice)

    async with contextlib.AsyncExitStack() as stack:
        alice_ws = await stack.enter_async_context(ws_connect(server, token=alice.access))
        # Every socket of the worker hears through the layer's one subscription; all must be
        # told.
        bob_sockets = [
            await stack.enter_async_context(ws_connect(server, token=bob.access))
            for _ in range(IDLE_SOCKETS)
        ]
        sockets = [alice_ws, *bob_sockets]
        for ws in sockets:
            await join(ws, room)
        before = await post(alice_ws, room, "before the outage")
        for ws in sockets:
            await message_by_id(ws, before)

        redis_server.stop()
        # Joining needs Redis (a new subscription): either this frame gets `unavailable` or
        # the socket is already being closed because the layer's subscription is down.
        await alice_ws.send(json.dumps({"type": "join", "room": room, "ref": "during"}))
        outcomes = await asyncio.gather(
            *(read_until_closed(ws, OUTAGE_ANSWER_TIMEOUT) for ws in sockets)
        )

    for frames, closed in outcomes:
        assert closed is not None, outcomes
        assert closed.code == CloseCode.TRY_AGAIN_LATER, outcomes
        for frame in frames:
            assert frame.get("ref") == "during", frames
            assert (frame["type"], frame["code"]) == ("error", "unavailable"), frames

    health = api.health()
    assert health.status == 503
    assert health.body["checks"] == {"database": "ok", "redis": "unavailable"}
    # A socket opened during the outage is told to come back later, not left hanging.
    assert await refused_with(ws_connect(server, token=alice.access)) == (
        CloseCode.TRY_AGAIN_LATER
    )
    assert server.alive(), server.output()

    redis_server.start()
    wait_until(lambda: api.health().status == 200, timeout=10, what="healthz back to 200")
    assert api.health().body["checks"] == {"database": "ok", "redis": "ok"}
    assert api.ticket(alice)

    # Connections the pool kept from before the outage are dead; a burst of sockets draws
    # on all of them at once, and none may fail for it.
    async with contextlib.AsyncExitStack() as stack:
        sockets = await asyncio.gather(
            *(
                stack.enter_async_context(ws_connect(server, token=account.access))
                for account in [alice, *[bob] * IDLE_SOCKETS]
            )
        )
        joined = await asyncio.gather(*(join(ws, room) for ws in sockets))
        assert all(before in ids(reply["history"]) for reply in joined)
        after = await post(sockets[0], room, "after the outage")
        received = await asyncio.gather(*(message_by_id(ws, after) for ws in sockets[1:]))
        assert {m["body"] for m in received} == {"after the outage"}
    assert server.alive()


async def test_ticket_endpoint_answers_503_while_redis_is_down(
    start_redis: Callable[[], RedisServer], start_server: Callable[..., Server]
) -> None:
    redis_server = start_redis()
    server = start_server(redis_server.url, name="ticket-outage")
    api = Api(server)
    account = api.account()
    redis_server.stop()
    response = api.call("POST", "/api/realtime/ticket/", token=account.access)
    assert response.status == 503, (response, server.output())
    assert response.body["error"]["code"] == "unavailable"
    # Login is throttled through the same Redis cache: refused for now, not a 500.
    login = api.call(
        "POST", "/api/auth/token/", {"username": account.username, "password": PASSWORD}
    )
    assert login.status == 503, (login, server.output())
    assert login.body["error"]["code"] == "unavailable"


async def test_a_redis_restart_within_the_grace_keeps_sockets_and_loses_nothing(
    start_redis: Callable[[], RedisServer], start_server: Callable[..., Server]
) -> None:
    redis_server = start_redis()
    # A grace well above the restart's length, so that a slow machine cannot turn the blip
    # into an outage.
    server = start_server(redis_server.url, name="blip", REDIS_OUTAGE_GRACE_SECONDS="20")
    api = Api(server)
    alice, bob = api.account("alice"), api.account("bob")
    room = api.room(alice)

    async with contextlib.AsyncExitStack() as stack:
        alice_ws = await stack.enter_async_context(ws_connect(server, token=alice.access))
        listeners = [
            await stack.enter_async_context(ws_connect(server, token=bob.access)) for _ in range(5)
        ]
        for ws in [alice_ws, *listeners]:
            await join(ws, room)

        redis_server.stop()
        # Stored and acknowledged (the database is up); its broadcast is lost with Redis.
        during = await post(alice_ws, room, "said while Redis was down")
        redis_server.start()

        for ws in listeners:
            assert (await message_by_id(ws, during, within=OUTAGE_ANSWER_TIMEOUT))["body"] == (
                "said while Redis was down"
            )
        after = await post(alice_ws, room, "said after")
        for ws in listeners:
            # In order and once: the next message is the one after, nothing repeated.
            assert (await next_message(ws))["id"] == after
        assert server.alive()

    records = [r["message"] for r in server.log_records()]
    assert any("ws broadcast failed" in m for m in records), records
    # Noticed by the layer (an error, or redis-py reconnecting by itself), then caught up.
    assert any("channel layer subscription lost" in m for m in records), records
    assert any("restoring" in m for m in records), records
    assert not any("closing" in m and "4013" in m for m in records), records
