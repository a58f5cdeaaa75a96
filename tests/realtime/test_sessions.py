"""A socket's session in-process: lifetime, in-band refresh, revocation events and the
checks that catch a lost one, connection caps, and the byte bound of `joined`."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import override_settings

from accounts.models import LoginSession, User
from realtime import groups
from realtime.protocol import CloseCode
from tests.accounts.helpers import jwt_payload
from tests.conftest import session_token
from tests.realtime.conftest import exchange, expect_close, headers_for, join, post_messages

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def realtime(**values: Any) -> override_settings:
    return override_settings(REALTIME={**settings.REALTIME, **values})


async def open_with(sockets, access: str):
    comm = sockets.communicator(headers=headers_for(access))
    connected, _ = await comm.connect()
    assert connected
    return comm


async def fresh_access(user: User, lifetime: timedelta | None = None) -> str:
    def mint() -> str:
        access = session_token(user).access_token
        if lifetime is not None:
            access.set_exp(lifetime=lifetime)
        return str(access)

    return await sync_to_async(mint)()


# --- Lifetime and refresh ------------------------------------------------------------------------


async def test_a_socket_is_closed_4102_when_its_token_and_grace_run_out(sockets, user):
    with realtime(TOKEN_GRACE_SECONDS=0):
        comm = await open_with(sockets, await fresh_access(user, timedelta(seconds=1)))
        assert await expect_close(comm, within=5) == CloseCode.TOKEN_EXPIRED


async def test_refresh_moves_the_deadline_to_the_new_tokens(sockets, user):
    with realtime(TOKEN_GRACE_SECONDS=0):
        comm = await open_with(sockets, await fresh_access(user, timedelta(seconds=1)))
        renewed = await fresh_access(user, timedelta(seconds=60))
        reply = await exchange(comm, {"type": "refresh", "token": renewed, "ref": "r"})
        assert reply["type"] == "refreshed"
        assert reply["ref"] == "r"
        assert reply["expires_at"] > time.time() + 50
        await asyncio.sleep(1.5)
        assert await exchange(comm, {"type": "ping"}) == {"type": "pong"}


@pytest.mark.parametrize("whose", ["other-user", "garbage", "inactive"])
async def test_refresh_with_a_bad_token_keeps_the_old_deadline(sockets, user, make_user, whose):
    other = await sync_to_async(make_user)("mallory")
    tokens = {"other-user": other, "garbage": None, "inactive": user}
    with realtime(TOKEN_GRACE_SECONDS=0):
        comm = await open_with(sockets, await fresh_access(user, timedelta(seconds=2)))
        if whose == "garbage":
            token = "not.a.token"
        else:
            token = await fresh_access(tokens[whose])
        if whose == "inactive":
            # Its session is fine, but a token of an account since disabled is no token.
            await User.objects.filter(pk=user.pk).aupdate(is_active=False)
        reply = await exchange(comm, {"type": "refresh", "token": token, "ref": "r"})
        assert (reply["type"], reply["code"], reply["ref"]) == ("error", "invalid_token", "r")
        assert await expect_close(comm, within=5) == CloseCode.TOKEN_EXPIRED


# --- Revocation --------------------------------------------------------------------------------


async def test_session_end_closes_only_the_sockets_of_the_ended_sessions(sockets, user):
    tokens = [await fresh_access(user) for _ in range(3)]
    ended, spared, kept = [await open_with(sockets, token) for token in tokens]
    sid = dict(zip((ended, spared, kept), (jwt_payload(t)["sid"] for t in tokens), strict=True))

    await groups.end_sessions(user.pk, reason="logout", session_ids=[sid[ended]], keep=None)
    assert await expect_close(ended) == CloseCode.SESSION_REVOKED
    assert await spared.receive_nothing()

    await groups.end_sessions(user.pk, reason="password_changed", session_ids=None, keep=sid[kept])
    assert await expect_close(spared) == CloseCode.SESSION_REVOKED
    assert await exchange(kept, {"type": "ping"}) == {"type": "pong"}

    await groups.end_sessions(user.pk, reason="account_disabled", session_ids=None, keep=None)
    assert await expect_close(kept) == CloseCode.FORBIDDEN


@pytest.mark.parametrize(
    ("lost", "expected"),
    [("session_revoked", CloseCode.SESSION_REVOKED), ("deactivated", CloseCode.FORBIDDEN)],
)
@pytest.mark.parametrize("frame", ["join", "send"])
async def test_join_and_send_catch_a_lost_revocation(
    sockets, user, make_room, lost, expected, frame
):
    await sync_to_async(make_room)("general", owner=user)
    comm = await open_with(sockets, await fresh_access(user))
    await join(comm, "general")
    if lost == "deactivated":
        await User.objects.filter(pk=user.pk).aupdate(is_active=False)
    else:
        await LoginSession.objects.filter(user=user).aupdate(revoked_reason="logout")
        await LoginSession.objects.filter(user=user).aupdate(revoked_at=user.date_joined)
    if frame == "join":
        await comm.send_json_to({"type": "join", "room": "general"})
    else:
        await comm.send_json_to({"type": "send", "room": "general", "body": "hi"})
    assert await expect_close(comm) == expected


# --- Caps and sizes ----------------------------------------------------------------------------


async def test_a_socket_over_the_users_cap_is_closed_4009(sockets, user, make_user):
    with realtime(MAX_CONNECTIONS_PER_USER=2):
        await open_with(sockets, await fresh_access(user))
        second = await open_with(sockets, await fresh_access(user))
        assert await sockets.refused(headers=headers_for(await fresh_access(user))) == 4009
        # Another user is not counted against this one.
        bob = await sync_to_async(make_user)("bob")
        await open_with(sockets, await fresh_access(bob))
        # A closed socket gives its slot back.
        await second.disconnect()
        await open_with(sockets, await fresh_access(user))


async def test_a_socket_over_the_address_cap_is_closed_4009(sockets, user, make_user):
    with realtime(MAX_CONNECTIONS_PER_ADDRESS=1):
        await open_with(sockets, await fresh_access(user))
        bob = await sync_to_async(make_user)("bob")
        assert await sockets.refused(headers=headers_for(await fresh_access(bob))) == 4009


async def test_joined_history_is_bounded_by_bytes(sockets, user, make_room):
    room = await sync_to_async(make_room)("general", owner=user)
    await sync_to_async(post_messages)(room, user, 10)
    comm = await open_with(sockets, await fresh_access(user))
    everything = await join(comm, "general")
    assert (len(everything["history"]), everything["has_more"]) == (10, False)

    one_message = len(str(everything["history"][-1]).encode())
    with realtime(HISTORY_MAX_BYTES=3 * one_message):
        bounded = await join(comm, "general")
    assert bounded["has_more"] is True
    assert 1 <= len(bounded["history"]) <= 3
    assert bounded["history"] == everything["history"][-len(bounded["history"]) :]
