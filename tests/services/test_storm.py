"""A burst of sockets on one worker whose Redis pool is far smaller than the burst.

redis-py 8 caps an asyncio ConnectionPool at 100 connections and raises MaxConnectionsError
past that, and channels-redis creates its pool with no limit of its own: on the stock layer
a burst of a few hundred sockets fails. The project's layer queues for a pooled connection.
Handshakes themselves queue too (realtime.admission), and those that cannot be served in
time are told so with 4013.
"""

from __future__ import annotations

import asyncio
import resource
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import redis
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from realtime.redis import POOL_SIZE as REALTIME_POOL_SIZE
from tests.services.support.api import Api
from tests.services.support.common import HOST
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import message_by_id, post, request, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

BURST = 400
# Served one at a time, a wave this big takes seconds of handshakes (about 3 ms each), so
# its tail must wait past the 1-second queue time whatever the machine's speed.
WAVE = 1000
POOL_SIZE = 50
# Room for the largest burst, the test's own sockets and the server's files and Redis
# connections.
FILES_NEEDED = WAVE + 200
BURST_TIMEOUT = 60.0


def _ensure_open_files(pid: int | None = None) -> None:
    """Raise the soft open-files limit (of this process, or of `pid`) to fit the burst."""
    soft, hard = resource.prlimit(pid or 0, resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < FILES_NEEDED:
        if hard != resource.RLIM_INFINITY and hard < FILES_NEEDED:
            pytest.fail(f"open files hard limit {hard} < {FILES_NEEDED}; raise `ulimit -Hn`")
        resource.prlimit(pid or 0, resource.RLIMIT_NOFILE, (FILES_NEEDED, hard))


@dataclass
class Burst:
    sockets: list[ClientConnection] = field(default_factory=list)
    handshakes: Counter[str] = field(default_factory=Counter)
    joins: Counter[str] = field(default_factory=Counter)


async def _open(server: Server, token: str, burst: Burst) -> None:
    try:
        ws = await ws_connect(server, token=token, open_timeout=BURST_TIMEOUT)
    except InvalidStatus as exc:
        burst.handshakes[f"HTTP {exc.response.status_code}"] += 1
    except (OSError, TimeoutError) as exc:
        burst.handshakes[type(exc).__name__] += 1
    else:
        burst.handshakes["open"] += 1
        burst.sockets.append(ws)


async def _join(ws: ClientConnection, room: str, burst: Burst) -> None:
    try:
        reply = await request(ws, {"type": "join", "room": room}, within=BURST_TIMEOUT)
    except ConnectionClosed as exc:
        burst.joins[f"closed {exc.rcvd.code if exc.rcvd else 1006}"] += 1
    else:
        burst.joins[reply["type"] if reply["type"] == "joined" else reply["code"]] += 1


async def _burst(server: Server, token: str, room: str) -> Burst:
    """Open BURST sockets at once, then have every one of them join `room` at once."""
    burst = Burst()
    async with asyncio.timeout(BURST_TIMEOUT):
        await asyncio.gather(*(_open(server, token, burst) for _ in range(BURST)))
        await asyncio.gather(*(_join(ws, room, burst) for ws in burst.sockets))
    return burst


async def _close_all(sockets: list[ClientConnection]) -> None:
    async with asyncio.timeout(30):
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


@pytest.fixture
def storm_redis(start_redis: Callable[[], RedisServer]) -> RedisServer:
    # Its own Redis, so its client count is this worker's alone.
    return start_redis()


def _start_storm_server(start_server: Callable[..., Server], redis_url: str, **env: str) -> Server:
    _ensure_open_files()
    server = start_server(
        redis_url, name="storm", REDIS_POOL_MAX_CONNECTIONS=str(POOL_SIZE), **env
    )
    _ensure_open_files(server.pid)
    return server


async def test_burst_larger_than_the_pool_is_served_in_full(
    storm_redis: RedisServer, start_server: Callable[..., Server]
) -> None:
    server = _start_storm_server(start_server, storm_redis.url)
    api = Api(server)
    account = api.account("storm")
    room = api.room(account)

    burst = await _burst(server, account.access, room)
    try:
        assert burst.handshakes == Counter(open=BURST), burst.handshakes
        assert burst.joins == Counter(joined=BURST), burst.joins

        sent = await post(burst.sockets[0], room, "to everyone")
        async with asyncio.timeout(BURST_TIMEOUT):
            received = await asyncio.gather(
                *(message_by_id(ws, sent, within=BURST_TIMEOUT) for ws in burst.sockets)
            )
        assert len(received) == BURST

        client = redis.Redis(host=HOST, port=storm_redis.port, socket_timeout=5)
        try:
            connected = client.info("clients")["connected_clients"]
        finally:
            client.close()
        # The layer's pool, the realtime client's (connection slots), and a few for the cache
        # and this very INFO call: bounded, whatever the burst.
        assert connected <= POOL_SIZE + REALTIME_POOL_SIZE + 10, connected
    finally:
        await _close_all(burst.sockets)
    assert server.alive()


async def test_stock_layer_fails_the_same_burst(
    storm_redis: RedisServer, start_server: Callable[..., Server]
) -> None:
    """The trap the project's layer exists for, so this suite notices if it ever goes away."""
    server = _start_storm_server(
        start_server,
        storm_redis.url,
        DJANGO_SETTINGS_MODULE="tests.services.stock_layer_settings",
    )
    api = Api(server)
    account = api.account("stock")
    room = api.room(account)

    burst = await _burst(server, account.access, room)
    try:
        served = burst.joins["joined"]
        assert served < BURST, (burst.handshakes, burst.joins)
        # Whatever failed, failed with a documented answer (or an HTTP 500 handshake).
        failures = set(burst.handshakes) - {"open"} | set(burst.joins) - {"joined"}
        assert failures <= {"HTTP 500", "closed 4013", "unavailable"}, failures
        assert "MaxConnectionsError" in server.all_output()
    finally:
        await _close_all(burst.sockets)


async def _fate(server: Server, token: str) -> tuple[str, ClientConnection | None]:
    """Open a socket: "open" if it stays open, "closed <code>" if it is closed right after
    the handshake, or what failed the handshake itself (a drop, a timeout...)."""
    try:
        ws = await ws_connect(server, token=token, open_timeout=BURST_TIMEOUT)
    except InvalidStatus as exc:
        return f"HTTP {exc.response.status_code}", None
    except (OSError, TimeoutError, InvalidMessage) as exc:
        return type(exc).__name__, None
    try:
        await request(ws, {"type": "ping"}, within=BURST_TIMEOUT)
    except ConnectionClosed as exc:
        return f"closed {exc.rcvd.code if exc.rcvd else 1006}", None
    return "open", ws


async def test_a_wave_too_big_to_serve_in_time_is_told_to_come_back(
    storm_redis: RedisServer, start_server: Callable[..., Server]
) -> None:
    """Handshakes wait their turn (one at a time here); those still waiting after the queue
    time (1 s here) are closed with 4013, never dropped by daphne's handshake timeout."""
    server = _start_storm_server(
        start_server,
        storm_redis.url,
        WS_HANDSHAKES_AT_ONCE="1",
        WS_HANDSHAKE_TIMEOUT_SECONDS="3",
    )
    account = Api(server).account("wave")
    async with asyncio.timeout(BURST_TIMEOUT):
        fates = await asyncio.gather(*(_fate(server, account.access) for _ in range(WAVE)))
    try:
        outcomes = Counter(fate for fate, _ in fates)
        assert set(outcomes) == {"open", "closed 4013"}, outcomes
        busy = [r for r in server.log_records() if "ws refused reason=busy" in r["message"]]
        assert len(busy) == outcomes["closed 4013"], outcomes
    finally:
        await _close_all([ws for _, ws in fates if ws is not None])
    assert server.alive()
