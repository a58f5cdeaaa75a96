"""The database goes away and comes back under a live daphne: documented answers, recovery.

The outage is real: the server's SQLite file is moved aside and a directory takes its place,
so every new connection fails to open it (CONN_MAX_AGE is 0: each request and each consumer
call opens its own). Handshakes then close with 1013, frames on open sockets get
`unavailable`, /healthz answers 503, and putting the file back restores service.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from realtime.protocol import CloseCode
from tests.services.support.api import Api
from tests.services.support.common import migrated_environment
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import join, post, refused_with, request, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]


@contextlib.contextmanager
def database_gone(path: Path) -> Iterator[None]:
    """Replace the SQLite file (and its WAL files) with an unopenable directory, then restore."""
    aside = path.with_name(path.name + ".aside")
    aside.mkdir()
    moved = [p for p in path.parent.glob(path.name + "*") if p.is_file()]
    for file in moved:
        file.rename(aside / file.name)
    path.mkdir()
    try:
        yield
    finally:
        path.rmdir()
        for file in moved:
            (aside / file.name).rename(file)
        aside.rmdir()


async def test_database_outage_is_answered_and_survived(
    tmp_path: Path,
    start_redis: Callable[[], RedisServer],
    start_server: Callable[..., Server],
) -> None:
    database = tmp_path / "db.sqlite3"
    own_env = migrated_environment(tmp_path)
    redis_server = start_redis()
    server = start_server(redis_server.url, name="db-outage", DATABASE_URL=own_env["DATABASE_URL"])
    api = Api(server)
    alice = api.account("alice")
    room = api.room(alice)

    async with ws_connect(server, token=alice.access) as ws:
        await join(ws, room)
        stored = await post(ws, room, "before the outage")

        with database_gone(database):
            health = api.health()
            assert health.status == 503
            assert health.body["checks"]["database"] == "unavailable"

            # The token is fine, but the handshake must load its user: try again later.
            assert await refused_with(ws_connect(server, token=alice.access)) == (
                CloseCode.TRY_AGAIN_LATER
            )

            # An open socket is told its frame failed, and stays open.
            reply = await request(ws, {"type": "send", "room": room, "body": "during"})
            assert reply["type"] == "error"
            assert reply["code"] == "unavailable"
            pong = await request(ws, {"type": "ping"})
            assert pong["type"] == "pong"
            assert server.alive()

        assert api.health().status == 200
        after = await post(ws, room, "after the outage")
        assert after > stored

    async with ws_connect(server, token=alice.access) as again:
        joined = await join(again, room)
        assert [m["body"] for m in joined["history"]] == ["before the outage", "after the outage"]
    records = [r["message"] for r in server.log_records()]
    assert any("ws handshake backend failed" in m for m in records), records
    assert any("ws frame failed" in m for m in records), records
