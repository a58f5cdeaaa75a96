"""Every close code of docs/protocol.md, received by a real client through a real daphne,
under `manage.py serve` and under plain `daphne config.asgi:application` alike.

Codes are asserted as plain ints, the way a client sees them on the wire. The codes only
`manage.py serve` can send (1001 on shutdown, 1009, 4010) are in test_shutdown.py,
test_limits.py and test_slow_client.py, each beside what plain daphne does instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from tests.services.support.admin import create_superuser
from tests.services.support.api import Api
from tests.services.support.common import FOREIGN_ORIGIN, ORIGIN
from tests.services.support.daphne import RUNNERS, Server
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import (
    join,
    read_until_closed,
    recv_json,
    refused_with,
    ws_connect,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

# An admin's change reaches every process's sockets through Redis at once; the bound only
# leaves room for a loaded two-core machine.
REVOCATION_WITHIN = 3.0


async def test_ten_malformed_frames_close_with_4400(either_server: Server) -> None:
    account = Api(either_server).account()
    async with ws_connect(either_server, token=account.access) as ws:
        for _ in range(10):
            await ws.send("{not json")
        frames, closed = await read_until_closed(ws)
    assert [frame["code"] for frame in frames] == ["invalid_json"] * 10
    assert closed is not None, "dropped without a close frame"
    assert closed.code == 4400


async def test_a_flood_is_rate_limited_then_closed_with_4008(either_server: Server) -> None:
    account = Api(either_server).account()
    async with ws_connect(either_server, token=account.access) as ws:
        # The burst (20), then 20 strikes in a row: far faster than 5 frames a second.
        for n in range(60):
            await ws.send(json.dumps({"type": "ping", "ref": str(n)}))
        frames, closed = await read_until_closed(ws)
    codes = [frame.get("code") for frame in frames if frame["type"] == "error"]
    assert codes, frames
    assert set(codes) == {"rate_limited"}
    assert closed is not None, "dropped without a close frame"
    assert closed.code == 4008


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        pytest.param({"origin": FOREIGN_ORIGIN}, 4403, id="foreign-origin"),
        pytest.param({"query": "?token=abc"}, 4403, id="token-in-url"),
        pytest.param({"path": "/ws/other/"}, 4403, id="unknown-path"),
        pytest.param({"token": "not-a-token"}, 4101, id="invalid-token"),
        pytest.param({}, 4101, id="no-credentials"),
    ],
)
async def test_refused_handshakes_carry_their_code(
    either_server: Server, how: dict[str, str], expected: int
) -> None:
    account = Api(either_server).account()
    how = dict(how)
    # A browser's way in (subprotocol, with an Origin), so that only the one flaw counts.
    token = how.pop("token", account.access if how else None)
    how.setdefault("origin", ORIGIN)
    connection = ws_connect(either_server, token=token, how="subprotocol", **how)
    assert await refused_with(connection) == expected


async def test_sign_out_closes_the_sessions_sockets_with_4103(either_server: Server) -> None:
    api = Api(either_server)
    account = api.account()
    async with ws_connect(either_server, token=account.access) as ws:
        await join(ws, api.room(account))
        api.expect(204, "POST", "/api/auth/logout/", {"refresh": account.refresh})
        _, closed = await read_until_closed(ws, within=REVOCATION_WITHIN)
    assert closed is not None, "dropped without a close frame"
    assert closed.code == 4103
    # The session's access token is dead too, at the handshake and on the API.
    assert await refused_with(ws_connect(either_server, token=account.access)) == 4103
    api.expect(401, "GET", "/api/auth/me/", token=account.access)


async def test_deactivation_in_the_admin_form_closes_sockets_on_every_process_with_4403(
    server_a: Server, server_b: Server, plain_server: Server
) -> None:
    api = Api(server_a)
    admin = create_superuser(server_a)
    account = api.account()
    user_id = api.expect(200, "GET", "/api/auth/me/", token=account.access)["id"]
    sockets = [ws_connect(server, token=account.access) for server in (server_a, server_b)]
    sockets.append(ws_connect(plain_server, token=account.access))
    async with sockets[0] as on_a, sockets[1] as on_b, sockets[2] as on_plain:
        for ws in (on_a, on_b, on_plain):
            assert (await recv_ping(ws))["type"] == "pong"
        # Unticking "Active" on the user's change form, as an administrator does.
        saved = admin.submit(f"/admin/accounts/user/{user_id}/change/", {"is_active": None})
        assert saved.status == 200, saved.text[:500]
        assert saved.url.endswith("/admin/accounts/user/"), "the form was not saved"
        outcomes = await asyncio.gather(
            *(read_until_closed(ws, within=REVOCATION_WITHIN) for ws in (on_a, on_b, on_plain))
        )
    assert [closed and closed.code for _, closed in outcomes] == [4403, 4403, 4403]
    assert await refused_with(ws_connect(server_b, token=account.access)) == 4403
    api.expect(401, "POST", "/api/auth/token/refresh/", {"refresh": account.refresh})


@pytest.mark.parametrize("runner", RUNNERS)
async def test_a_socket_over_the_users_cap_is_closed_with_4009(
    redis_server: RedisServer, start_server: Callable[..., Server], runner: str
) -> None:
    server = start_server(
        redis_server.url, name="capped", runner=runner, WS_MAX_CONNECTIONS_PER_USER="2"
    )
    account = Api(server).account()
    async with ws_connect(server, token=account.access), ws_connect(server, token=account.access):
        assert await refused_with(ws_connect(server, token=account.access)) == 4009


@pytest.mark.parametrize("runner", RUNNERS)
async def test_a_socket_outliving_its_token_is_closed_with_4102(
    redis_server: RedisServer, start_server: Callable[..., Server], runner: str
) -> None:
    server = start_server(
        redis_server.url,
        name="short-tokens",
        runner=runner,
        JWT_ACCESS_SECONDS="2",
        WS_TOKEN_GRACE_SECONDS="1",
    )
    account = Api(server).account()
    async with ws_connect(server, token=account.access) as ws:
        _, closed = await read_until_closed(ws, within=10)
    assert closed is not None, "dropped without a close frame"
    assert closed.code == 4102


@pytest.mark.parametrize("runner", RUNNERS)
async def test_a_redis_outage_closes_sockets_with_4013(
    start_redis: Callable[[], RedisServer], start_server: Callable[..., Server], runner: str
) -> None:
    redis = start_redis()
    server = start_server(redis.url, name="redis-outage", runner=runner)
    account = Api(server).account()
    async with ws_connect(server, token=account.access) as ws:
        assert (await recv_ping(ws))["type"] == "pong"
        redis.stop()
        _, closed = await read_until_closed(ws, within=15)
    assert closed is not None, "dropped without a close frame"
    assert closed.code == 4013
    assert await refused_with(ws_connect(server, token=account.access)) == 4013


async def recv_ping(ws) -> dict:
    await ws.send(json.dumps({"type": "ping"}))
    return await recv_json(ws)
