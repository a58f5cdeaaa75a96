"""Handshake authentication against a real daphne: header, subprotocol, ticket, refusals."""

from __future__ import annotations

import pytest

from realtime.protocol import CloseCode
from tests.services.support.api import Api
from tests.services.support.common import FOREIGN_ORIGIN, ORIGIN, SUBPROTOCOL
from tests.services.support.daphne import Server
from tests.services.support.sockets import refused_with, request, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]


async def test_bearer_header_authenticates(server_a: Server, api: Api) -> None:
    account = api.account()
    async with ws_connect(server_a, token=account.access, how="header") as ws:
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"


async def test_bearer_subprotocol_authenticates_and_is_never_echoed(
    server_a: Server, api: Api
) -> None:
    account = api.account()
    async with ws_connect(server_a, token=account.access, how="subprotocol", origin=ORIGIN) as ws:
        assert ws.subprotocol == SUBPROTOCOL
        assert ws.response.headers.get_all("Sec-WebSocket-Protocol") == [SUBPROTOCOL]
        assert all(account.access not in value for _, value in ws.response.headers.raw_items())
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"


async def test_ticket_from_one_process_opens_a_socket_on_another_once(
    server_a: Server, server_b: Server, api: Api
) -> None:
    account = api.account()
    ticket = api.ticket(account)

    async with ws_connect(server_b, query=f"?ticket={ticket}", origin=ORIGIN) as ws:
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"

    # Spent: neither process accepts it again.
    for server in (server_b, server_a):
        code = await refused_with(ws_connect(server, query=f"?ticket={ticket}", origin=ORIGIN))
        assert code == CloseCode.UNAUTHENTICATED


async def test_token_in_query_string_is_refused(server_a: Server, api: Api) -> None:
    account = api.account()
    connection = ws_connect(server_a, query=f"?token={account.access}", origin=ORIGIN)
    assert await refused_with(connection) == CloseCode.FORBIDDEN


async def test_foreign_origin_is_refused_even_with_a_valid_token(
    server_a: Server, api: Api
) -> None:
    account = api.account()
    connection = ws_connect(
        server_a, token=account.access, how="subprotocol", origin=FOREIGN_ORIGIN
    )
    assert await refused_with(connection) == CloseCode.FORBIDDEN


async def test_invalid_token_is_refused_as_unauthenticated(server_a: Server) -> None:
    connection = ws_connect(server_a, token="not.a.jwt", how="header")
    assert await refused_with(connection) == CloseCode.UNAUTHENTICATED
