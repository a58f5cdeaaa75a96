"""A client that keeps sending but never reads cannot make the server hold its output without
bound: past OUTPUT_MAX_BYTES of unsent output the socket is closed with 4010, dropped and
logged, directly and behind the shipped nginx (`manage.py serve`; plain daphne has no bound,
docs/deployment.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.services.support.admin import django_shell
from tests.services.support.api import Api
from tests.services.support.common import HOST, ChatEndpoint, wait_until
from tests.services.support.daphne import Server
from tests.services.support.nginx import Nginx
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

# Each `joined` carries 50 messages of 1000 characters: about 60 KB of output per join.
HISTORY_BODY_CHARS = 1000
# 400 joins ask for about 24 MB of output, far past every buffer on the way.
JOINS = 400
# The server may grow by its bound (1 MiB) and some working memory, never by what was asked.
RSS_GROWTH_LIMIT_BYTES = 12 * 1024 * 1024
# A client's receive buffer as small as the kernel allows: it reads nothing anyway.
CLIENT_RCVBUF = 4096
# The client can drive the server as fast as it likes: the output bound is under test.
UNLIMITED_RATE = {"WS_RATE_BURST": "100000", "WS_RATE_PER_SECOND": "100000"}


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def full_room(server: Server, api: Api) -> tuple[str, str]:
    account = api.account()
    room = api.room(account)
    body = "x" * HISTORY_BODY_CHARS
    django_shell(
        server,
        f"from realtime.models import Room; from realtime.services import message_store; "
        f"room = Room.objects.get(slug={room!r}); "
        f"[message_store(room=room, author=None, body={body!r}) for _ in range(50)]",
    )
    return account.access, room


async def flood_without_reading(
    endpoint: ChatEndpoint, server: Server, token: str, room: str
) -> list[dict]:
    """Send JOINS joins without reading until the server gives up on the socket; the
    server's log records of that. Then read: the connection must be over."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
    sock.connect((HOST, endpoint.port))
    # max_queue=1: the client library stops reading the socket once one frame waits.
    async with ws_connect(endpoint, token=token, sock=sock, max_queue=1) as ws:
        frame = json.dumps({"type": "join", "room": room})
        with contextlib.suppress(ConnectionClosed):
            for _ in range(JOINS):
                await ws.send(frame)
        closes = await asyncio.to_thread(
            wait_until,
            lambda: [r for r in server.log_records() if "slow client close" in r["message"]],
            timeout=30,
            what="the server to close the slow client",
        )
        # Now read: whatever reached our buffers, then the end of the connection.
        with pytest.raises(ConnectionClosed):
            await read_forever(ws)
    return closes


async def read_forever(ws) -> None:
    async with asyncio.timeout(30):
        while True:
            await ws.recv()


async def assert_closed_and_bounded(endpoint: ChatEndpoint, server: Server) -> None:
    """A client floods `server` through `endpoint` without reading: the server closes it
    with 4010, once, and its memory grows by no more than the bound allows."""
    api = Api(endpoint)
    token, room = full_room(server, api)
    before = rss_bytes(server.pid)
    closes = await flood_without_reading(endpoint, server, token, room)
    growth = rss_bytes(server.pid) - before
    assert growth < RSS_GROWTH_LIMIT_BYTES, f"the server grew by {growth / 2**20:.0f} MiB"
    assert len(closes) == 1, endpoint.output()
    assert "code=4010" in closes[0]["message"]
    # The server is fine, and so is everyone else.
    assert api.health().status == 200


async def test_a_client_that_never_reads_is_closed_with_4010_and_bounded(
    redis_server: RedisServer, start_server: Callable[..., Server]
) -> None:
    server = start_server(redis_server.url, name="slow-client", **UNLIMITED_RATE)
    await assert_closed_and_bounded(server, server)


async def test_a_client_that_never_reads_behind_nginx_is_closed_too(
    redis_server: RedisServer, start_proxied: Callable[..., tuple[Nginx, Server]]
) -> None:
    nginx, server = start_proxied(redis_server.url, name="slow-proxied", **UNLIMITED_RATE)
    await assert_closed_and_bounded(nginx, server)
