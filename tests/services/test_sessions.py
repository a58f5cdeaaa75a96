"""Sign-in sessions on the real stack: a socket lives no longer than its token unless it is
refreshed in-band, and every path that changes who a user is ends their sockets on every
process and refuses their older tokens (docs/security.md, "Sessions")."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from collections.abc import Callable

import pytest

from tests.accounts.helpers import jwt_payload
from tests.services.support.admin import create_superuser, django_shell
from tests.services.support.api import Account, Api
from tests.services.support.common import PASSWORD
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import (
    join,
    read_until_closed,
    refused_with,
    request,
    ws_connect,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

# Revocations travel through Redis to every process at once; this leaves room for a loaded
# two-core machine.
REVOCATION_WITHIN = 3.0
NEW_PASSWORD = "another-correct-horse-battery-77"


def refreshed(api: Api, account: Account) -> Account:
    """The account's next token pair, through the refresh endpoint (rotation)."""
    pair = api.expect(200, "POST", "/api/auth/token/refresh/", {"refresh": account.refresh})
    return Account(account.username, pair["access"], pair["refresh"])


def user_id(api: Api, account: Account) -> int:
    return api.expect(200, "GET", "/api/auth/me/", token=account.access)["id"]


async def alive(ws) -> bool:
    return (await request(ws, {"type": "ping"}))["type"] == "pong"


# --- A socket's lifetime ---------------------------------------------------------------------


@pytest.fixture
def short_tokens(redis_server: RedisServer, start_server: Callable[..., Server]) -> Server:
    """A server whose access tokens live 3 seconds and whose sockets get 1 second of grace."""
    return start_server(
        redis_server.url,
        name="short-tokens",
        JWT_ACCESS_SECONDS="3",
        WS_TOKEN_GRACE_SECONDS="1",
    )


async def test_refresh_in_band_extends_the_socket_past_its_first_token(
    short_tokens: Server,
) -> None:
    api = Api(short_tokens)
    account = api.account()
    first_expiry = jwt_payload(account.access)["exp"]
    async with ws_connect(short_tokens, token=account.access) as ws:
        await asyncio.sleep(1)
        renewed = refreshed(api, account)
        reply = await request(ws, {"type": "refresh", "token": renewed.access})
        assert reply["type"] == "refreshed", reply
        assert reply["expires_at"] == jwt_payload(renewed.access)["exp"]
        assert reply["expires_at"] > first_expiry
        # Past the first token's expiry and its second of grace, the socket still works...
        await asyncio.sleep(first_expiry + 1.5 - time.time())
        assert await alive(ws)
        # ...until the new token's expiry, when it is closed with "refresh, then reconnect".
        _, closed = await read_until_closed(ws, within=10)
    assert closed is not None
    assert closed.code == 4102
    assert time.time() >= reply["expires_at"]


@pytest.mark.parametrize("whose", ["another-user", "garbage", "refresh-token"])
async def test_refresh_with_a_bad_token_is_an_error_and_extends_nothing(
    short_tokens: Server, whose: str
) -> None:
    api = Api(short_tokens)
    account, other = api.account(), api.account()
    token = {"another-user": other.access, "garbage": "x.y.z", "refresh-token": account.refresh}
    async with ws_connect(short_tokens, token=account.access) as ws:
        started = time.time()
        reply = await request(ws, {"type": "refresh", "token": token[whose]})
        assert (reply["type"], reply["code"]) == ("error", "invalid_token")
        # The token never appears in the answer.
        assert token[whose] not in json.dumps(reply)
        _, closed = await read_until_closed(ws, within=10)
    assert closed is not None
    assert closed.code == 4102
    # Closed at the first token's deadline (3 s + 1 s of grace), not later.
    assert time.time() - started < 6
    assert token[whose] not in short_tokens.all_output()


# --- Paths that end sessions -------------------------------------------------------------------


async def test_sign_out_everywhere_closes_every_socket_of_the_user_on_every_process(
    server_a: Server, server_b: Server
) -> None:
    api = Api(server_a)
    phone = api.account()
    laptop = Api(server_b).expect(
        200, "POST", "/api/auth/token/", {"username": phone.username, "password": PASSWORD}
    )
    async with (
        ws_connect(server_a, token=phone.access) as on_a,
        ws_connect(server_b, token=laptop["access"]) as on_b,
    ):
        api.expect(
            204, "POST", "/api/auth/logout/", {"refresh": phone.refresh, "everywhere": True}
        )
        outcomes = await asyncio.gather(
            *(read_until_closed(ws, within=REVOCATION_WITHIN) for ws in (on_a, on_b))
        )
    assert [closed and closed.code for _, closed in outcomes] == [4103, 4103]
    api.expect(401, "POST", "/api/auth/token/refresh/", {"refresh": laptop["refresh"]})
    api.expect(401, "GET", "/api/auth/me/", token=laptop["access"])
    assert await refused_with(ws_connect(server_b, token=laptop["access"])) == 4103


async def test_password_change_ends_every_other_session_and_keeps_this_one(
    server_a: Server, server_b: Server
) -> None:
    api = Api(server_a)
    this = api.account()
    other = Api(server_b).expect(
        200, "POST", "/api/auth/token/", {"username": this.username, "password": PASSWORD}
    )
    async with (
        ws_connect(server_a, token=this.access) as here,
        ws_connect(server_b, token=other["access"]) as there,
    ):
        pair = api.expect(
            200,
            "POST",
            "/api/auth/password/",
            {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
            token=this.access,
        )
        _, closed = await read_until_closed(there, within=REVOCATION_WITHIN)
        assert closed is not None
        assert closed.code == 4103
        # This session's socket stays, and takes the new access token in-band.
        assert await alive(here)
        reply = await request(here, {"type": "refresh", "token": pair["access"]})
        assert reply["type"] == "refreshed", reply
    api.expect(200, "GET", "/api/auth/me/", token=pair["access"])
    api.expect(200, "POST", "/api/auth/token/refresh/", {"refresh": pair["refresh"]})
    for stale in (this.access, other["access"]):
        api.expect(401, "GET", "/api/auth/me/", token=stale)
    api.expect(401, "POST", "/api/auth/token/refresh/", {"refresh": other["refresh"]})
    api.expect(
        200, "POST", "/api/auth/token/", {"username": this.username, "password": NEW_PASSWORD}
    )


async def test_password_change_refuses_a_wrong_current_password(server_a: Server) -> None:
    api = Api(server_a)
    account = api.account()
    body = api.expect(
        400,
        "POST",
        "/api/auth/password/",
        {"old_password": "not-it", "new_password": NEW_PASSWORD},
        token=account.access,
    )
    assert body["error"]["fields"]["old_password"][0]["code"] == "invalid"
    api.expect(200, "GET", "/api/auth/me/", token=account.access)


async def test_the_admin_password_form_ends_the_users_sessions(
    server_a: Server, server_b: Server
) -> None:
    api = Api(server_a)
    admin = create_superuser(server_a)
    account = api.account()
    path = f"/admin/accounts/user/{user_id(api, account)}/password/"
    async with ws_connect(server_b, token=account.access) as ws:
        saved = admin.submit(
            path,
            {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
        )
        assert saved.status == 200, saved.text[:500]
        assert "/password/" not in saved.url, "the password form was not saved"
        _, closed = await read_until_closed(ws, within=REVOCATION_WITHIN)
    assert closed is not None
    assert closed.code == 4103
    api.expect(401, "POST", "/api/auth/token/refresh/", {"refresh": account.refresh})


async def test_deleting_a_user_in_the_admin_closes_their_sockets(
    server_a: Server, server_b: Server
) -> None:
    api = Api(server_a)
    admin = create_superuser(server_a)
    account = api.account()
    path = f"/admin/accounts/user/{user_id(api, account)}/delete/"
    async with ws_connect(server_b, token=account.access) as ws:
        saved = admin.submit(path, {"post": "yes"})
        assert saved.status == 200, saved.text[:500]
        _, closed = await read_until_closed(ws, within=REVOCATION_WITHIN)
    assert closed is not None
    assert closed.code == 4403
    api.expect(401, "GET", "/api/auth/me/", token=account.access)


async def test_reactivating_in_the_admin_form_revives_no_old_token(server_a: Server) -> None:
    api = Api(server_a)
    admin = create_superuser(server_a)
    account = api.account()
    path = f"/admin/accounts/user/{user_id(api, account)}/change/"
    admin.submit(path, {"is_active": None})
    admin.submit(path, {"is_active": "on"})
    api.expect(401, "POST", "/api/auth/token/refresh/", {"refresh": account.refresh})
    api.expect(401, "GET", "/api/auth/me/", token=account.access)
    assert await refused_with(ws_connect(server_a, token=account.access)) == 4103
    # The person signs in again and everything works.
    api.expect(
        200, "POST", "/api/auth/token/", {"username": account.username, "password": PASSWORD}
    )


@pytest.mark.parametrize("frame", ["join", "send"])
async def test_join_and_send_refuse_a_user_whose_deactivation_event_was_lost(
    server_a: Server, frame: str
) -> None:
    api = Api(server_a)
    account = api.account()
    room = api.room(account)
    async with ws_connect(server_a, token=account.access) as ws:
        await join(ws, room)
        # A queryset update sends no signal: no event reaches the socket.
        django_shell(
            server_a,
            "from accounts.models import User; "
            f"User.objects.filter(username={account.username!r}).update(is_active=False)",
        )
        assert await alive(ws)
        if frame == "join":
            await ws.send(json.dumps({"type": "join", "room": room}))
        else:
            await ws.send(json.dumps({"type": "send", "room": room, "body": "still here"}))
        frames, closed = await read_until_closed(ws)
    assert frames == []
    assert closed is not None
    assert closed.code == 4403
    history = api.call("GET", f"/api/rooms/{room}/messages/", token=account.access)
    assert history.status == 401


# --- Refresh rotation --------------------------------------------------------------------------


async def test_racing_refreshes_of_one_token_yield_one_pair_and_revoke_the_session(
    server_a: Server, server_b: Server
) -> None:
    api = Api(server_a)
    account = api.account()
    apis = [Api(server_a), Api(server_b)] * 4

    def refresh(client: Api) -> int:
        return client.call("POST", "/api/auth/token/refresh/", {"refresh": account.refresh}).status

    with concurrent.futures.ThreadPoolExecutor(len(apis)) as pool:
        statuses = sorted(pool.map(refresh, apis))
    assert statuses == [200] + [401] * (len(apis) - 1)
    # The losers were replays of a spent token: the whole session is revoked, the winner too.
    api.expect(401, "GET", "/api/auth/me/", token=account.access)


async def test_a_replayed_refresh_token_revokes_the_session_and_its_sockets(
    server_a: Server, server_b: Server
) -> None:
    api = Api(server_a)
    account = api.account()
    uid = user_id(api, account)
    current = refreshed(api, account)
    async with ws_connect(server_b, token=current.access) as ws:
        replay = api.call("POST", "/api/auth/token/refresh/", {"refresh": account.refresh})
        assert replay.status == 401
        assert replay.body["error"]["code"] == "token_not_valid"
        _, closed = await read_until_closed(ws, within=REVOCATION_WITHIN)
    assert closed is not None
    assert closed.code == 4103
    api.expect(401, "POST", "/api/auth/token/refresh/", {"refresh": current.refresh})
    records = [
        r
        for r in server_a.log_records()
        if r["message"].startswith(f"refresh token replayed user={uid} ")
    ]
    assert len(records) == 1
    assert account.refresh not in server_a.all_output()
