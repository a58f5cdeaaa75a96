"""What daphne writes about sockets: JSON-lines records of each event, and no credentials."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from realtime.protocol import CloseCode
from tests.services.support.api import Api, http_request
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

    # Each record carries its context as fields of its own, beside the message.
    user_id = int(jwt.decode(account.access, options={"verify_signature": False})["user_id"])
    error_frame = next(
        r
        for r in _messages(servers)
        if r["message"].startswith("ws error frame code=") and r.get("user") == user_id
    )
    assert error_frame["code"] == "invalid_json"
    assert error_frame["conn"] in error_frame["message"]
    refusal = next(r for r in _messages(servers) if "reason=token_in_query" in r["message"])
    assert (refusal["reason"], refusal["path"]) == ("token_in_query", "/ws/chat/")
    assert "=" not in refusal["addr"]

    for server in servers:
        assert server.log_records(), f"{server.log_file} has no JSON records"
        # The file, the console and the access log: a credential may leak through any of them.
        everything = server.all_output()
        for secret in (account.access, account.refresh, ticket):
            assert secret not in everything, f"a credential reached {server.name}'s output"
        assert "eyJ" not in everything, json.dumps(
            [line for line in everything.splitlines() if "eyJ" in line][:5]
        )


async def test_a_ticket_seen_in_a_plain_http_url_is_spent_and_reaches_no_log(
    server_a: Server, server_b: Server, api: Api
) -> None:
    account = api.account("pasted")
    user_id = api.expect(200, "GET", "/api/auth/me/", token=account.access)["id"]
    ticket = api.ticket(account)
    # Not credential-shaped: only dropping the whole query string keeps it out of the logs.
    marker = f"n0te-{secrets.token_hex(8)}"
    token = f"opaque-{secrets.token_hex(8)}"

    # The socket URL pasted into a browser, and some other URL carrying a credential.
    pasted = http_request("GET", f"{server_a.base_url}/ws/chat/?ticket={ticket}&note={marker}")
    assert pasted.status == 404
    other = http_request("GET", f"{server_a.base_url}/nowhere/?token={token}&note={marker}")
    assert other.status == 404

    # Spent in Redis, so no process of the deployment accepts it any more.
    refused = ws_connect(server_b, query=f"?ticket={ticket}", origin=ORIGIN)
    assert await refused_with(refused) == CloseCode.UNAUTHENTICATED

    # Logged with the user it stood for, and nothing else of what the store held for it.
    wait_until(
        lambda: _has(
            server_a.log_records(),
            "realtime.security",
            f"http ticket in url spent user={user_id} path=/ws/chat/ addr=",
        ),
        timeout=10,
        what=f"the spent ticket's record\n{server_a.output()}",
    )
    # daphne's access log (stdout) has both requests, as paths without their query strings.
    access = wait_until(
        lambda: [
            line
            for line in server_a.stdout_file.read_text().splitlines()
            if '"GET /ws/chat/" 404 ' in line or '"GET /nowhere/" 404 ' in line
        ],
        timeout=10,
        what=f"the access lines\n{server_a.output()}",
    )
    assert len(access) >= 2, access
    # django.request's records of both 404s, whose `request` extra names the path alone.
    not_found = [r for r in server_a.log_records() if r["logger"] == "django.request"]
    assert {"GET /ws/chat/", "GET /nowhere/"} <= {r.get("request") for r in not_found}

    for where in (server_a.log_file, server_a.stdout_file, server_a.stderr_file):
        text = where.read_text(errors="replace")
        for secret in (ticket, token, marker):
            assert secret not in text, f"{secret} reached {where.name}"


async def test_control_characters_in_a_url_forge_no_line_of_the_text_console(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(None, name="text-console", LOG_FORMAT="text")
    forged = f"CRITICAL realtime.security forged-{secrets.token_hex(4)}"
    url_forged = forged.replace(" ", "%20")
    encodings = {"\n": "%0a", "\r": "%0d", "\x1b": "%1b", "\u2028": "%e2%80%a8"}

    # daphne decodes paths: the handshake's refusal ("ws refused ... path=<path>") and the
    # 404's django.request record (its `request` extra) get a real line break, a carriage
    # return, a terminal escape and a Unicode line separator.
    for encoded in encodings.values():
        refused = ws_connect(server, query=f"{encoded}{url_forged}", origin=ORIGIN)
        assert await refused_with(refused) == CloseCode.UNAUTHENTICATED
        assert http_request("GET", f"{server.base_url}/x{encoded}{url_forged}").status == 404

    def records() -> list[dict[str, Any]] | None:
        found = [r for r in server.log_records() if forged in json.dumps(r)]
        return found if len(found) >= 2 * len(encodings) else None

    found = wait_until(records, timeout=10, what=f"the records in the file\n{server.output()}")
    escaped = [control.encode("unicode_escape").decode() for control in encodings]
    # The JSON file: the same records, escaped before the encoding.
    refusals = {r["message"] for r in found if r["logger"] == "realtime.security"}
    for e in escaped:
        assert any(m.endswith(f" path=/ws/chat/{e}{forged}") for m in refusals), (e, refusals)
    not_found = {r["request"] for r in found if r["logger"] == "django.request"}
    assert not_found == {f"GET /x{e}{forged}" for e in escaped}
    # The text console: one line per record, none of them the client's.
    console = server.stderr_file.read_text(errors="replace")
    lines = [line for line in console.split("\n") if forged in line]
    assert len(lines) == 2 * len(encodings), console
    for line in lines:
        assert not set(encodings) & set(line), line
    for line in lines:
        assert " WARNING realtime.security ws refused " in line or (
            " WARNING django.request Not Found: " in line
        ), line
