"""Clients chat for a bounded time while a daphne process is killed and Redis restarts.

Each client follows docs/protocol.md's resume algorithm (tests/services/support/client.py):
reconnect, `join` with `since`, fill over REST what `recovered: false` leaves out, re-send
unacknowledged messages with their `client_id`. At the end every client holds every
message of its room exactly once, in seq order, and every acknowledged message is among
them, stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pytest

from tests.services.support.api import Api
from tests.services.support.client import ResumingClient
from tests.services.support.common import wait_until
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

CLIENTS = 6
ROOMS = 2
# Bounded: the whole run talks for this long, a message per client every SAY_EVERY.
TALK_SECONDS = 10.0
SAY_EVERY = 0.4
KILL_AT = 2.5
REDIS_RESTART_AT = 5.5
SETTLE_SECONDS = 30.0


async def test_every_acknowledged_message_is_held_once_in_order_after_chaos(
    start_redis: Callable[[], RedisServer], start_server: Callable[..., Server]
) -> None:
    store = start_redis()
    doomed = start_server(store.url, name="chaos-doomed")
    survivor = start_server(store.url, name="chaos-survivor")
    api = Api(survivor)
    owner = api.account()
    rooms = [api.room(owner) for _ in range(ROOMS)]
    clients = [
        # Half start on the process that will die; every client knows both addresses.
        ResumingClient(
            f"client{n}", api.account(), [doomed, survivor] if n % 2 else [survivor, doomed]
        )
        for n in range(CLIENTS)
    ]
    for client in clients:
        await client.start(rooms)

    async def talk(client: ResumingClient) -> None:
        n = 0
        deadline = time.monotonic() + TALK_SECONDS
        while time.monotonic() < deadline:
            await client.say(rooms[n % ROOMS], f"{client.name} says {n}")
            n += 1
            await asyncio.sleep(SAY_EVERY)

    async def chaos() -> None:
        await asyncio.sleep(KILL_AT)
        doomed.kill()
        await asyncio.sleep(REDIS_RESTART_AT - KILL_AT)
        store.stop()
        store.start()

    try:
        await asyncio.gather(chaos(), *(talk(client) for client in clients))
        # Every send is acknowledged in the end: the retries found their way.
        await asyncio.to_thread(
            wait_until,
            lambda: all(not client.unacked for client in clients),
            timeout=SETTLE_SECONDS,
            what="every message to be acknowledged",
        )
        stored = {room: _stored(api, owner.access, room) for room in rooms}
        await asyncio.to_thread(
            wait_until,
            lambda: all(
                client.rooms[room].last_seq == len(stored[room])
                for client in clients
                for room in rooms
            ),
            timeout=SETTLE_SECONDS,
            what="every client to hold every message",
        )
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.stop()

    acked = {(room, seq) for client in clients for room, seq in client.acked.values()}
    assert len(acked) == sum(len(client.acked) for client in clients), "two sends, one seq"
    for room in rooms:
        seqs = [message["seq"] for message in stored[room]]
        # Stored once each, numbered without a gap: no retry stored a second copy.
        assert seqs == list(range(1, len(seqs) + 1))
        assert len({m["body"] for m in stored[room]}) == len(seqs)
        assert {seq for acked_room, seq in acked if acked_room == room} == set(seqs)
        for client in clients:
            state = client.rooms[room]
            assert sorted(state.held) == seqs, client.name
            # And nothing came twice on the wire either: the server's promise, not a dedupe.
            assert state.repeats == 0, client.name
            assert [state.held[seq]["body"] for seq in seqs] == [m["body"] for m in stored[room]]
    # The chaos happened to the clients, not only around them.
    assert sum(client.reconnects for client in clients) >= CLIENTS // 2


def _stored(api: Api, token: str, room: str) -> list[dict]:
    messages: list[dict] = []
    after = 0
    while True:
        page = api.expect(
            200, "GET", f"/api/rooms/{room}/messages/?after={after}&limit=100", token=token
        )
        messages += page["messages"]
        if not page["has_more"]:
            return messages
        after = messages[-1]["seq"]
