"""Handshake authentication (realtime.middleware) through the full ASGI stack."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable

import jwt
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import User
from realtime.protocol import CloseCode
from tests.conftest import token_pair
from tests.realtime.conftest import (
    ORIGIN,
    SUBPROTOCOL,
    access_token_for,
    assert_not_logged,
    headers_for,
    log_messages,
    ticket_for,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def assert_refusal_logged(caplog, reason: str) -> None:
    refusals = log_messages(caplog, "realtime.security")
    assert any(f"reason={reason}" in message for message in refusals), refusals


def assert_connect_logged(caplog, method: str) -> None:
    connects = [m for m in log_messages(caplog, "realtime.connection") if "ws connect" in m]
    assert len(connects) == 1, connects
    assert f"auth={method}" in connects[0]


# --- Forged tokens -----------------------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def resigned(token: str, **claims: object) -> str:
    """The token with some claims changed, signed again with the real key."""
    payload = {**_claims(token), **claims}
    return jwt.encode(payload, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def valid_resigned(user: User) -> str:
    return resigned(token_pair(user)[0])


def expired_access(user: User) -> str:
    return resigned(token_pair(user)[0], exp=int(time.time()) - 5)


def wrong_audience(user: User) -> str:
    return resigned(token_pair(user)[0], aud="another-service")


def wrong_issuer(user: User) -> str:
    return resigned(token_pair(user)[0], iss="another-issuer")


def alg_none(user: User) -> str:
    payload = _claims(token_pair(user)[0])
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."


def tampered_signature(user: User) -> str:
    header, payload, signature = token_pair(user)[0].split(".")
    # The first character changes decoded bytes for sure; the last may only change padding.
    first = "A" if signature[0] != "A" else "B"
    return f"{header}.{payload}.{first}{signature[1:]}"


def tampered_payload(user: User) -> str:
    header, _, signature = token_pair(user)[0].split(".")
    other = _claims(token_pair(user)[0]) | {"user_id": "999999"}
    return f"{header}.{_b64(other)}.{signature}"


def other_key(user: User) -> str:
    payload = _claims(token_pair(user)[0])
    return jwt.encode(payload, "not-the-signing-key-" * 3, algorithm="HS256")


def refresh_as_access(user: User) -> str:
    return token_pair(user)[1]


def garbage(user: User) -> str:
    return "not-a-jwt-at-all"


# --- Authorization header ----------------------------------------------------------------------


async def test_authorization_header_authenticates_the_user(sockets, user, realtime_logs):
    access = await access_token_for(user)
    comm = sockets.communicator(headers=headers_for(access))
    connected, subprotocol = await comm.connect()
    assert connected
    assert subprotocol is None
    assert comm.scope["headers"]  # sanity: the header really was sent
    await comm.send_json_to({"type": "ping", "ref": "r1"})
    assert await comm.receive_json_from() == {"type": "pong", "ref": "r1"}
    assert_connect_logged(realtime_logs, "header")
    assert f"user={user.pk} " in log_messages(realtime_logs, "realtime.connection")[0]
    assert_not_logged(realtime_logs, access)


async def test_resigned_token_with_unchanged_claims_is_accepted(sockets, user):
    # Control for the forged-token cases below: re-signing alone does not break a token.
    token = await sync_to_async(valid_resigned)(user)
    comm = sockets.communicator(headers=headers_for(token))
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}


@pytest.mark.parametrize(
    "make_token",
    [
        refresh_as_access,
        expired_access,
        tampered_signature,
        tampered_payload,
        alg_none,
        wrong_audience,
        wrong_issuer,
        other_key,
        garbage,
    ],
)
async def test_invalid_access_token_is_refused_4101(
    sockets, user, realtime_logs, make_token: Callable[[User], str]
):
    token = await sync_to_async(make_token)(user)
    code = await sockets.refused(headers=headers_for(token))
    assert code == CloseCode.UNAUTHENTICATED
    assert_refusal_logged(realtime_logs, "invalid_token")
    assert_not_logged(realtime_logs, token)


@pytest.mark.parametrize(
    "value",
    ["Bearer", "Token abc.def.ghi", "Bearer two parts", "Basic dXNlcjpwYXNz", ""],
)
async def test_malformed_authorization_header_is_refused_4101(sockets, realtime_logs, value):
    headers = [(b"authorization", value.encode()), (b"origin", ORIGIN.encode())]
    assert await sockets.refused(headers=headers) == CloseCode.UNAUTHENTICATED
    assert_refusal_logged(realtime_logs, "bad_authorization_header")


async def test_no_credentials_is_refused_4101(sockets, realtime_logs, db):
    assert await sockets.refused(headers=headers_for()) == CloseCode.UNAUTHENTICATED
    assert_refusal_logged(realtime_logs, "no_credentials")


async def test_token_of_inactive_user_is_refused_4403(sockets, user, realtime_logs):
    access = await access_token_for(user)
    # Disabled behind the token's back: no signal, no blacklist; only the handshake check.
    await User.objects.filter(pk=user.pk).aupdate(is_active=False)
    code = await sockets.refused(headers=headers_for(access))
    assert code == CloseCode.FORBIDDEN
    assert_refusal_logged(realtime_logs, "user_inactive")
    assert_not_logged(realtime_logs, access)


async def test_token_of_deleted_user_is_refused_4101(sockets, user, realtime_logs):
    access = await access_token_for(user)
    await sync_to_async(user.delete)()
    code = await sockets.refused(headers=headers_for(access))
    assert code == CloseCode.UNAUTHENTICATED
    assert_refusal_logged(realtime_logs, "session_not_found")
    assert_not_logged(realtime_logs, access)


async def test_token_issued_before_a_password_change_is_refused_4103(sockets, user):
    access = await access_token_for(user)

    def change_password() -> None:
        user.set_password("a-brand-new-password-99")
        user.save()

    await sync_to_async(change_password)()
    assert await sockets.refused(headers=headers_for(access)) == CloseCode.SESSION_REVOKED


# --- Subprotocols ------------------------------------------------------------------------------


async def test_bearer_subprotocol_is_accepted_with_chat_v1_only(sockets, user, realtime_logs):
    access = await access_token_for(user)
    comm = sockets.communicator(
        headers=headers_for(), subprotocols=[SUBPROTOCOL, f"bearer.{access}"]
    )
    connected, subprotocol = await comm.connect()
    assert connected
    assert subprotocol == SUBPROTOCOL
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}
    assert_connect_logged(realtime_logs, "subprotocol")
    assert_not_logged(realtime_logs, access)


async def test_bearer_subprotocol_without_chat_v1_never_echoes_the_token(sockets, user):
    access = await access_token_for(user)
    comm = sockets.communicator(headers=headers_for(), subprotocols=[f"bearer.{access}"])
    connected, subprotocol = await comm.connect()
    assert connected
    assert subprotocol is None
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}


async def test_invalid_bearer_subprotocol_is_refused_with_chat_v1_selected(
    sockets, user, realtime_logs
):
    token = await sync_to_async(expired_access)(user)
    comm = sockets.communicator(
        headers=headers_for(), subprotocols=[SUBPROTOCOL, f"bearer.{token}"]
    )
    connected, subprotocol = await comm.connect()
    # A browser fails a handshake that ignores its subprotocols: the close code would be lost.
    assert connected
    assert subprotocol == SUBPROTOCOL
    assert (await comm.receive_output())["code"] == CloseCode.UNAUTHENTICATED
    assert_refusal_logged(realtime_logs, "invalid_token")
    assert_not_logged(realtime_logs, token)


async def test_two_bearer_subprotocols_are_refused_4101(sockets, user, realtime_logs):
    access = await access_token_for(user)
    code = await sockets.refused(
        headers=headers_for(),
        subprotocols=[SUBPROTOCOL, f"bearer.{access}", f"bearer.{access}"],
    )
    assert code == CloseCode.UNAUTHENTICATED
    assert_refusal_logged(realtime_logs, "several_bearer_subprotocols")


async def test_authorization_header_wins_over_subprotocol(sockets, user, realtime_logs):
    access = await access_token_for(user)
    comm = sockets.communicator(
        headers=headers_for(access), subprotocols=[SUBPROTOCOL, "bearer.garbage"]
    )
    connected, subprotocol = await comm.connect()
    assert connected
    assert subprotocol == SUBPROTOCOL
    assert_connect_logged(realtime_logs, "header")


# --- Tickets -----------------------------------------------------------------------------------


def ticket_from_api(user: User) -> str:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair(user)[0]}")
    response = client.post("/api/realtime/ticket/")
    assert response.status_code == 201, response.content
    return response.json()["ticket"]


async def test_ticket_from_the_api_authenticates_once(sockets, user, realtime_logs):
    ticket = await sync_to_async(ticket_from_api)(user)
    comm = sockets.communicator(f"/ws/chat/?ticket={ticket}", headers_for())
    connected, subprotocol = await comm.connect()
    assert connected
    assert subprotocol is None
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}
    assert_connect_logged(realtime_logs, "ticket")

    # The same ticket again: spent.
    code = await sockets.refused(f"/ws/chat/?ticket={ticket}", headers_for())
    assert code == CloseCode.UNAUTHENTICATED
    assert_refusal_logged(realtime_logs, "invalid_ticket")
    assert_not_logged(realtime_logs, ticket)


async def test_expired_ticket_is_refused_4101(sockets, user, realtime_logs):
    with override_settings(REALTIME={**settings.REALTIME, "TICKET_TTL_SECONDS": 1}):
        ticket = await ticket_for(user)
        await asyncio.sleep(1.1)
        code = await sockets.refused(f"/ws/chat/?ticket={ticket}", headers_for())
    assert code == CloseCode.UNAUTHENTICATED
    assert_refusal_logged(realtime_logs, "invalid_ticket")
    assert_not_logged(realtime_logs, ticket)


async def test_unexpired_short_lived_ticket_is_accepted(sockets, user):
    # Control for the expiry test: the same TTL, used at once, works.
    with override_settings(REALTIME={**settings.REALTIME, "TICKET_TTL_SECONDS": 1}):
        ticket = await ticket_for(user)
        comm = sockets.communicator(f"/ws/chat/?ticket={ticket}", headers_for())
        connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}


@pytest.mark.parametrize("ticket", ["bogus-ticket", "", "x" * 500])
async def test_unknown_ticket_is_refused_4101(sockets, realtime_logs, db, ticket):
    code = await sockets.refused(f"/ws/chat/?ticket={ticket}", headers_for())
    assert code == CloseCode.UNAUTHENTICATED
    assert_refusal_logged(realtime_logs, "invalid_ticket")


async def test_two_tickets_are_refused_4101(sockets, user, realtime_logs):
    first = await ticket_for(user)
    second = await ticket_for(user)
    code = await sockets.refused(f"/ws/chat/?ticket={first}&ticket={second}", headers_for())
    assert code == CloseCode.UNAUTHENTICATED
    assert_refusal_logged(realtime_logs, "several_tickets")


async def test_ticket_of_a_since_disabled_user_is_refused_4403(sockets, user, realtime_logs):
    ticket = await ticket_for(user)
    await User.objects.filter(pk=user.pk).aupdate(is_active=False)
    code = await sockets.refused(f"/ws/chat/?ticket={ticket}", headers_for())
    assert code == CloseCode.FORBIDDEN
    assert_refusal_logged(realtime_logs, "user_inactive")


async def test_ticket_of_a_since_deleted_user_is_refused_4101(sockets, user, realtime_logs):
    ticket = await ticket_for(user)
    await sync_to_async(user.delete)()
    code = await sockets.refused(f"/ws/chat/?ticket={ticket}", headers_for())
    assert code == CloseCode.UNAUTHENTICATED
    assert_refusal_logged(realtime_logs, "session_not_found")


# --- Credentials in the URL --------------------------------------------------------------------


@pytest.mark.parametrize("param", ["token", "access", "jwt", "access_token", "TOKEN"])
async def test_token_in_query_string_is_refused_4403_even_with_valid_auth(
    sockets, user, realtime_logs, param
):
    access = await access_token_for(user)
    code = await sockets.refused(f"/ws/chat/?{param}={access}", headers_for(access))
    assert code == CloseCode.FORBIDDEN
    assert_refusal_logged(realtime_logs, "token_in_query")
    assert_not_logged(realtime_logs, access)


async def test_token_in_query_string_is_refused_beside_a_valid_ticket(
    sockets, user, realtime_logs
):
    access = await access_token_for(user)
    ticket = await ticket_for(user)
    code = await sockets.refused(f"/ws/chat/?ticket={ticket}&jwt={access}", headers_for())
    assert code == CloseCode.FORBIDDEN
    assert_not_logged(realtime_logs, access, ticket)


# --- Routing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws/other/", "/", "/ws/chat/extra/", "/api/rooms/"])
async def test_unknown_websocket_path_is_refused_4403(sockets, user, realtime_logs, path):
    access = await access_token_for(user)
    assert await sockets.refused(path, headers_for(access)) == CloseCode.FORBIDDEN
    assert_refusal_logged(realtime_logs, "unknown_path")
    assert_not_logged(realtime_logs, access)
