"""Redis loses its data under live daphne processes (a restart of a node that persists
nothing, a failover to an empty replica, a flush): no socket stays open but deaf. Each is
back in every group it had, or closed with a reconnect code."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pytest
import redis
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from realtime.protocol import CloseAction, close_action
from tests.services.support.api import Account, Api
from tests.services.support.common import HOST
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import drain, join, post, recv_until, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

SOCKETS_PER_PROCESS = 10
# Each process looks for a lost Redis every REDIS_CHECK_SECONDS (1 s) and rejoins at once.
HEARING_WITHIN = 10.0
HEARD = "heard"


def flush(server: RedisServer) -> None:
    """Empty Redis without dropping a connection: what a failover to an empty replica does."""
    client = redis.Redis(host=HOST, port=server.port)
    try:
        client.flushall()
    finally:
        client.close()


async def until_logged(server: Server, text: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not any(text in record["message"] for record in server.log_records()):
        assert time.monotonic() < deadline, f"{server.name} never logged {text!r}"
        await asyncio.sleep(0.2)


async def hears(ws: ClientConnection, marker: str) -> str:
    """HEARD once a message whose body starts with `marker` arrives; else what the server's
    close code tells the client to do ("deaf" if neither happens in time)."""
    try:
        await recv_until(
            ws,
            lambda f: f["type"] == "message" and f["body"].startswith(marker),
            within=HEARING_WITHIN,
        )
    except ConnectionClosed as closed:
        return "dropped" if closed.rcvd is None else str(close_action(closed.rcvd.code))
    except TimeoutError:
        return "deaf"
    return HEARD


async def listen_after_reset(
    stack: contextlib.AsyncExitStack,
    servers: tuple[Server, ...],
    api: Api,
    speaker: Account,
    listener: Account,
    reset: Callable[[], None],
) -> list[str]:
    """Sockets on every server join one room; Redis is reset; then someone keeps talking
    until each listener heard it or was closed. Each listener's outcome."""
    room = api.room(speaker)
    listeners = []
    for server in servers:
        for _ in range(SOCKETS_PER_PROCESS):
            ws = await stack.enter_async_context(ws_connect(server, token=listener.access))
            await join(ws, room)
            listeners.append(ws)
    reset()
    for server in servers:
        await until_logged(server, "redis lost its data")
    pending = [asyncio.ensure_future(hears(ws, "after")) for ws in listeners]
    deadline = time.monotonic() + HEARING_WITHIN
    while not all(task.done() for task in pending) and time.monotonic() < deadline:
        # A fresh speaker each time, as a client that reconnects would be.
        with contextlib.suppress(ConnectionClosed, OSError):
            async with ws_connect(servers[0], token=speaker.access) as sender:
                await join(sender, room)
                await post(sender, room, f"after the reset {time.monotonic()}")
        await asyncio.sleep(0.3)
    return await asyncio.gather(*pending)


async def test_after_redis_is_emptied_every_socket_hears_again(
    start_redis: Callable[[], RedisServer], start_server: Callable[..., Server]
) -> None:
    store = start_redis()
    servers = (start_server(store.url, name="flush-a"), start_server(store.url, name="flush-b"))
    api = Api(servers[0])
    async with contextlib.AsyncExitStack() as stack:
        outcomes = await listen_after_reset(
            stack, servers, api, api.account(), api.account(), lambda: flush(store)
        )
    # No connection broke, so no socket may have been closed: each rejoined its groups.
    assert outcomes == [HEARD] * len(outcomes)


async def test_after_a_redis_restart_no_socket_is_left_deaf(
    start_redis: Callable[[], RedisServer], start_server: Callable[..., Server]
) -> None:
    store = start_redis()
    servers = (
        start_server(store.url, name="restart-a"),
        start_server(store.url, name="restart-b"),
    )
    api = Api(servers[0])

    def restart() -> None:
        store.stop()
        store.start()

    async with contextlib.AsyncExitStack() as stack:
        outcomes = await listen_after_reset(
            stack, servers, api, api.account(), api.account(), restart
        )
    # Whether a socket's process saw the restart as a failure (4013: reconnect) or only as
    # lost data (rejoined), it is never open and deaf.
    assert set(outcomes) <= {HEARD, str(CloseAction.RECONNECT)}, outcomes


async def test_what_was_said_while_the_groups_were_gone_arrives_once_in_order(
    start_redis: Callable[[], RedisServer], start_server: Callable[..., Server]
) -> None:
    store = start_redis()
    servers = (start_server(store.url, name="gap-a"), start_server(store.url, name="gap-b"))
    api = Api(servers[0])
    speaker, listener = api.account(), api.account()
    room = api.room(speaker)
    async with contextlib.AsyncExitStack() as stack:
        talking = await stack.enter_async_context(ws_connect(servers[0], token=speaker.access))
        await join(talking, room)
        listeners = []
        for server in servers:
            ws = await stack.enter_async_context(ws_connect(server, token=listener.access))
            await join(ws, room)
            listeners.append(ws)
        flush(store)
        # Said before any process noticed: its broadcast reaches an empty group.
        await post(talking, room, "during the gap")
        for server in servers:
            await until_logged(server, "redis lost its data")
        await post(talking, room, "after the rejoin")
        for ws in listeners:
            heard = [
                (await recv_until(ws, lambda f: f["type"] == "message"))["body"] for _ in range(2)
            ]
            assert heard == ["during the gap", "after the rejoin"]
            assert [f for f in await drain(ws, 0.5) if f["type"] == "message"] == []


async def test_the_users_own_group_is_restored_too(
    start_redis: Callable[[], RedisServer], start_server: Callable[..., Server]
) -> None:
    # Revocations travel in the per-user group: it must be back after a reset as well.
    store = start_redis()
    server = start_server(store.url, name="reset-user-group")
    api = Api(server)
    account = api.account()
    async with ws_connect(server, token=account.access) as ws:
        await join(ws, api.room(account))
        flush(store)
        await until_logged(server, "redis lost its data")
        api.expect(204, "POST", "/api/auth/logout/", {"refresh": account.refresh})
        with pytest.raises(ConnectionClosed) as closed:
            await recv_until(ws, lambda f: False, within=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4103
