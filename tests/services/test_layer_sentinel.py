"""The channel layer on a master found through Redis Sentinel (REDIS_SENTINELS,
REDIS_SENTINEL_MASTER), through a failover.

The project's own state stays on REDIS_URL, a Redis of its own here, so that where the layer's
traffic goes is plain to see: the room's subscriptions and publishes are on the master the
sentinel names, none on REDIS_URL's. Then the sentinel promotes the replica and the old
master is stopped: the processes follow the new master, and a message sent after the
failover reaches the other process through it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from tests.services.support.api import Api
from tests.services.support.common import HOST, wait_until
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer, SentinelServer
from tests.services.support.sockets import join, message_by_id, post, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

MASTER = "chatlayer"
ROOM_CHANNELS = "chat__group__room.*"
# A forced failover takes a few seconds (promotion, then the sentinel's next INFO rounds).
FAILOVER_TIMEOUT = 30.0
AFTER_FAILOVER_TIMEOUT = 20.0


def command(server: RedisServer | SentinelServer, *args: Any) -> Any:
    client = server.client()
    try:
        return client.execute_command(*args)
    finally:
        client.close()


def room_channels(server: RedisServer) -> list[bytes]:
    return command(server, "PUBSUB", "CHANNELS", ROOM_CHANNELS)


def publishes(server: RedisServer) -> int:
    client = server.client()
    try:
        return client.info("commandstats").get("cmdstat_publish", {}).get("calls", 0)
    finally:
        client.close()


def replica_in_sync(replica: RedisServer) -> bool:
    client = replica.client()
    try:
        return client.info("replication").get("master_link_status") == "up"
    finally:
        client.close()


def sentinel_knows_replica(sentinel: SentinelServer, replica: RedisServer) -> bool:
    client = sentinel.client()
    try:
        replicas = client.sentinel_slaves(MASTER)
    finally:
        client.close()
    return any(
        r["port"] == replica.port
        and r.get("master-link-status") == "ok"
        and not r.get("is_disconnected")
        and not r.get("is_sdown")
        for r in replicas
    )


async def test_the_layer_follows_the_master_sentinel_names_through_a_failover(
    start_redis: Callable[..., RedisServer],
    start_sentinel: Callable[[dict[str, int]], SentinelServer],
    start_server: Callable[..., Server],
) -> None:
    state = start_redis()
    master = start_redis()
    replica = start_redis(extra_args=("--replicaof", HOST, str(master.port)))
    wait_until(lambda: replica_in_sync(replica), timeout=10, what="replica in sync")
    sentinel = start_sentinel({MASTER: master.port})
    env = {"REDIS_SENTINELS": sentinel.address, "REDIS_SENTINEL_MASTER": MASTER}
    server_a = start_server(state.url, name="sentinel-a", **env)
    server_b = start_server(state.url, name="sentinel-b", **env)
    for server in (server_a, server_b):
        assert Api(server).health().body == {
            "status": "ok",
            "checks": {"database": "ok", "redis": "ok", "channel_layer": "ok"},
        }, server.output()
    api = Api(server_a)
    alice, bob = api.account("alice"), api.account("bob")
    room = api.room(alice)

    async with contextlib.AsyncExitStack() as stack:
        alice_ws = await stack.enter_async_context(ws_connect(server_a, token=alice.access))
        bob_ws = await stack.enter_async_context(ws_connect(server_b, token=bob.access))
        await join(alice_ws, room)
        await join(bob_ws, room)
        published = publishes(master)
        sent = await post(alice_ws, room, "through the master Sentinel names")
        assert (await message_by_id(bob_ws, sent))["body"] == "through the master Sentinel names"
        # The layer's traffic is on the master, none of it on REDIS_URL's Redis.
        assert len(room_channels(master)) == 1
        assert room_channels(state) == []
        assert publishes(master) > published

        wait_until(
            lambda: sentinel_knows_replica(sentinel, replica),
            timeout=FAILOVER_TIMEOUT,
            what="the sentinel to know the replica",
        )
        assert command(sentinel, "SENTINEL", "FAILOVER", MASTER)
        wait_until(
            lambda: sentinel.master_port(MASTER) == replica.port,
            timeout=FAILOVER_TIMEOUT,
            what="the sentinel to name the replica master",
        )
        master.stop()

        promoted = publishes(replica)
        after = await post(alice_ws, room, "after the failover")
        received = await message_by_id(bob_ws, after, within=AFTER_FAILOVER_TIMEOUT)
        assert received["body"] == "after the failover"
        # Published on the new master, where both processes now listen.
        wait_until(
            lambda: publishes(replica) > promoted,
            timeout=AFTER_FAILOVER_TIMEOUT,
            what="a publish on the new master",
        )
        wait_until(
            lambda: len(room_channels(replica)) == 1,
            timeout=AFTER_FAILOVER_TIMEOUT,
            what="the room's subscription on the new master",
        )

    for server in (server_a, server_b):
        assert server.alive(), server.output()
