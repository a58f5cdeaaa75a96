"""The channel layer over two Redis shards (CHANNEL_LAYER_REDIS_URLS), between two processes.

channels-redis hashes each group's name onto one of the layer's hosts; every process must
hash alike, or a message published on one shard would miss subscribers waiting on the other.
Rooms are created until both shards carry several (where each room landed is read from Redis
itself: the shard holding its subscription); then sockets on both processes, in every room,
receive every message of every room exactly once and in seq order, and each shard has
exactly the subscriptions and the publishes of its own rooms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

import pytest
from websockets.asyncio.client import ClientConnection

from tests.services.support.api import Api
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import join, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

ROOM_CHANNELS = "chat__group__room.*"
# Rooms each shard must carry: enough that an even spread is not luck.
ROOMS_PER_SHARD = 3
# The hash spreads rooms evenly; 40 rooms all on one shard would mean it does not.
MAX_ROOMS = 40
MESSAGES_PER_ROOM = 4
DELIVERY_TIMEOUT = 30.0


def room_channels(shard: RedisServer) -> set[str]:
    client = shard.client()
    try:
        return {name.decode() for name in client.pubsub_channels(ROOM_CHANNELS)}
    finally:
        client.close()


def subscribers(shard: RedisServer, channels: set[str]) -> dict[str, int]:
    client = shard.client()
    try:
        return {name.decode(): count for name, count in client.pubsub_numsub(*channels)}
    finally:
        client.close()


def publishes(shard: RedisServer) -> int:
    client = shard.client()
    try:
        return client.info("commandstats").get("cmdstat_publish", {}).get("calls", 0)
    finally:
        client.close()


async def collect(ws: ClientConnection, expected: int) -> list[dict]:
    """Every `message` frame until `expected` arrived, in arrival order."""
    messages: list[dict] = []
    while len(messages) < expected:
        frame = json.loads(await ws.recv())
        if frame["type"] == "message":
            messages.append(frame)
    return messages


async def test_two_shards_carry_every_room_between_two_processes(
    start_redis: Callable[..., RedisServer], start_server: Callable[..., Server]
) -> None:
    shards = [start_redis(), start_redis()]
    env = {
        "CHANNEL_LAYER_REDIS_URLS": ",".join(shard.url for shard in shards),
        # Every socket sends a burst here; the rate limit is not under test.
        "WS_RATE_BURST": "1000",
        "WS_RATE_PER_SECOND": "1000",
    }
    # The project's own state (slots, presence, tickets) stays on REDIS_URL: the first shard.
    servers = [start_server(shards[0].url, name=f"shard-{n}", **env) for n in ("a", "b")]
    for server in servers:
        assert Api(server).health().body == {
            "status": "ok",
            "checks": {"database": "ok", "redis": "ok", "channel_layer": "ok"},
        }, server.output()
    api = Api(servers[0])
    alice, bob = api.account("alice"), api.account("bob")

    async with contextlib.AsyncExitStack() as stack:
        on_a = await stack.enter_async_context(ws_connect(servers[0], token=alice.access))
        on_b = await stack.enter_async_context(ws_connect(servers[1], token=bob.access))
        # Which shard each room's group landed on, read from the shards as rooms are joined.
        placed: dict[str, tuple[int, str]] = {}
        known: list[set[str]] = [set(), set()]
        while min(sum(1 for i, _ in placed.values() if i == n) for n in (0, 1)) < ROOMS_PER_SHARD:
            assert len(placed) < MAX_ROOMS, f"every room hashed onto one shard: {placed}"
            room = api.room(alice)
            await join(on_a, room)
            await join(on_b, room)
            now = [room_channels(shard) for shard in shards]
            new = [now[n] - known[n] for n in (0, 1)]
            # Exactly one shard got this room's subscription.
            assert sorted(len(channels) for channels in new) == [0, 1], new
            index = 0 if new[0] else 1
            placed[room] = (index, next(iter(new[index])))
            known = now
        for index, shard in enumerate(shards):
            own = {channel for i, channel in placed.values() if i == index}
            others = {channel for i, channel in placed.values() if i != index}
            # Each of its rooms subscribed by both processes (they hash alike), no other room.
            assert subscribers(shard, own) == dict.fromkeys(own, 2)
            assert all(count == 0 for count in subscribers(shard, others).values())
        before = [publishes(shard) for shard in shards]

        expected = len(placed) * MESSAGES_PER_ROOM
        readers = [asyncio.create_task(collect(ws, expected)) for ws in (on_a, on_b)]
        # Both processes publish, alternately, without waiting for acks.
        for n in range(MESSAGES_PER_ROOM):
            for room in placed:
                ws = on_a if n % 2 == 0 else on_b
                await ws.send(json.dumps({"type": "send", "room": room, "body": f"{room}/{n}"}))
        done, pending = await asyncio.wait(readers, timeout=DELIVERY_TIMEOUT)
        for task in pending:
            task.cancel()
        assert not pending, f"{len(pending)} of 2 sockets lost messages"

    for task in done:
        received = task.result()
        bodies = [m["body"] for m in received]
        # Exactly once: every message, none twice.
        assert sorted(bodies) == sorted(
            f"{room}/{n}" for room in placed for n in range(MESSAGES_PER_ROOM)
        )
        for room in placed:
            seqs = [m["seq"] for m in received if m["room"] == room]
            assert seqs == sorted(seqs), (room, seqs)
            assert len(set(seqs)) == MESSAGES_PER_ROOM, (room, seqs)

    for index, shard in enumerate(shards):
        own = {channel for i, channel in placed.values() if i == index}
        # Its rooms' messages were published on it.
        assert publishes(shard) - before[index] >= len(own) * MESSAGES_PER_ROOM
