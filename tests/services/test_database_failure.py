"""The database goes away and comes back under a live daphne: documented answers, recovery.

The outage is real: the test's own PostgreSQL server is shut down (fast shutdown, as
`pg_ctl stop -m fast` does: open sessions are ended) and started again on the same port with
the same data. Meanwhile new connections are refused, and the ones the server's pool held
(checked before each use, as deployed) are dead. Handshakes then close
with CloseCode.TRY_AGAIN_LATER, frames on open sockets get `unavailable`, /healthz answers
503, and the restarted server restores service without restarting daphne. It runs under
`manage.py serve` and under plain daphne alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from realtime.protocol import CloseCode
from tests.services.support.api import Api
from tests.services.support.common import migrated_environment
from tests.services.support.daphne import RUNNERS, Server
from tests.services.support.postgres import PostgresServer
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import join, post, refused_with, request, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]


@contextlib.contextmanager
def database_down(database: PostgresServer) -> Iterator[None]:
    """Shut the server down for the duration of the block, then start it again."""
    database.stop()
    assert not database.accepts_connections()
    try:
        yield
    finally:
        database.start()


@pytest.mark.parametrize("runner", RUNNERS)
async def test_database_outage_is_answered_and_survived(
    runner: str,
    tmp_path: Path,
    start_postgres: Callable[[], PostgresServer],
    start_redis: Callable[[], RedisServer],
    start_server: Callable[..., Server],
) -> None:
    database = start_postgres()
    own_env = migrated_environment(tmp_path, database.url)
    redis_server = start_redis()
    server = start_server(
        redis_server.url,
        name=f"db-outage-{runner}",
        runner=runner,
        DATABASE_URL=own_env["DATABASE_URL"],
    )
    api = Api(server)
    alice = api.account("alice")
    room = api.room(alice)

    async with ws_connect(server, token=alice.access) as ws:
        await join(ws, room)
        stored = await post(ws, room, "before the outage")

        with database_down(database):
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
