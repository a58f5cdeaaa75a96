"""The project serves under plain `python -m daphne config.asgi:application` as it does under
`manage.py serve`: health, an authenticated handshake, a frame and its answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services.support.api import Api
from tests.services.support.common import SUBPROTOCOL
from tests.services.support.daphne import Server
from tests.services.support.sockets import request, ws_connect

pytestmark = pytest.mark.services


@pytest.mark.asyncio
async def test_health_handshake_and_ping(either_server: Server) -> None:
    api = Api(either_server)
    health = api.health()
    assert (health.status, health.body["status"]) == (200, "ok"), either_server.output()
    alice = api.account("alice")

    async with ws_connect(either_server, token=alice.access) as ws:
        assert ws.subprotocol == SUBPROTOCOL
        pong = await request(ws, {"type": "ping"})
        assert pong["type"] == "pong", pong


def test_plain_server_is_daphne_without_the_wrapper(plain_server: Server) -> None:
    argv = Path(f"/proc/{plain_server.pid}/cmdline").read_bytes().split(b"\0")[:-1]
    assert argv[1:3] == [b"-m", b"daphne"], argv
    assert argv[-1] == b"config.asgi:application", argv
    assert b"manage.py" not in argv, argv
