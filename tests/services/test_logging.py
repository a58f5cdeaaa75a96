"""What daphne writes about sockets: JSON-lines records of each event, and no credentials."""

from __future__ import annotations

import json
from typing import Any

import pytest

from realtime.protocol import CloseCode
from tests.services.support.api import Api
from tests.services.support.common import FOREIGN_ORIGIN, ORIGIN, wait_until
from tests.services.support.daphne import Server
from tests.services.support.sockets import recv_json, refused_with, request, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]


def _messages(servers: list[Server]) -> list[dict[str, Any]]:
    return [record for server in servers for record in server.log_records()]


def _has(records: list[dict[str, Any]], logger: str, *fragments: str) -> bool:
    return any(
        r["logger"] == logger and all(f in r["message"] for f in fragments) for r in records
    )


async def test_socket_events_are_logged_without_credentials(
    server_a: Server, server_b: Server, api: Api
) -> None:
    account = api.account("logged")
    ticket = api.ticket(account)

    async with ws_connect(server_a, token=account.access) as ws:
        await ws.send("{not json")
        error = await recv_json(ws)
        assert (error["type"], error["code"]) == ("error", "invalid_json")
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"
    async with ws_connect(server_b, query=f"?ticket={ticket}", origin=ORIGIN) as ws:
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"
    refusals = {
        "origin_not_allowed": ws_connect(
            server_a, token=account.access, how="subprotocol", origin=FOREIGN_ORIGIN
        ),
        "token_in_query": ws_connect(server_a, query=f"?token={account.access}", origin=ORIGIN),
        "invalid_ticket": ws_connect(server_b, query=f"?ticket={ticket}", origin=ORIGIN),
    }
    for connection in refusals.values():
        assert await refused_with(connection) in {CloseCode.FORBIDDEN, CloseCode.UNAUTHENTICATED}

    servers = [server_a, server_b]
    expected = [
        ("realtime.connection", "ws connect ", "auth=header"),
        ("realtime.connection", "ws connect ", "auth=ticket"),
        ("realtime.protocol", "ws error frame code=invalid_json"),
        *(("realtime.security", "ws refused", f"reason={reason}") for reason in refusals),
    ]
    # A record may land a moment after the client saw the socket close.
    wait_until(
        lambda: all(_has(_messages(servers), *fragments) for fragments in expected),
        timeout=10,
        what="the expected log records",
    )

    for server in servers:
        assert server.log_records(), f"{server.log_file} has no JSON records"
        # The file, the console and the access log: a credential may leak through any of them.
        everything = server.all_output()
        for secret in (account.access, account.refresh, ticket):
            assert secret not in everything, f"a credential reached {server.name}'s output"
        assert "eyJ" not in everything, json.dumps(
            [line for line in everything.splitlines() if "eyJ" in line][:5]
        )
