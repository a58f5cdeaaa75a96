"""The shipped nginx configuration, served by a real nginx in front of a real daphne.

The nginx under test includes deploy/nginx/chat-http.conf and chat-locations.conf themselves,
so these tests hold for the directives operators deploy; daphne runs with --proxy-headers, as
deploy/chat@.service starts it. Every client here is 127.0.0.1, so the address nginx must
forward is 127.0.0.1 whatever the client claims in X-Forwarded-For.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Callable

import pytest

from tests.services.support.api import Api, HttpResponse
from tests.services.support.common import (
    HOST,
    HTTP_TIMEOUT,
    ORIGIN,
    SUBPROTOCOL,
    unique_name,
    wait_until,
)
from tests.services.support.daphne import Server
from tests.services.support.nginx import Nginx, SiteNginx
from tests.services.support.sockets import join, message_by_id, post, request, ws_connect

pytestmark = [pytest.mark.services]

# Documentation ranges (RFC 5737): addresses a client might claim, never a real peer here.
SPOOFED = "203.0.113.9"
FORWARDED = "X-Forwarded-For"


def _find(server: Server, logger: str, *fragments: str) -> str | None:
    """The first LOG_FILE message of `logger` containing every fragment."""
    return next(
        (
            r["message"]
            for r in server.log_records()
            if r["logger"] == logger and all(f in r["message"] for f in fragments)
        ),
        None,
    )


def _find_all(server: Server, wanted: dict[str, tuple[str, ...]]) -> dict[str, str] | None:
    """Each wanted record's message by name, once all of them are in the LOG_FILE."""
    found = {name: _find(server, *fragments) for name, fragments in wanted.items()}
    return found if all(found.values()) else None


def _failed_login(target: Nginx | Server, username: str, forwarded: list[str]) -> int:
    """POST a wrong password with these X-Forwarded-For lines (several are allowed on the
    wire, which urllib cannot send); the response status."""
    body = json.dumps({"username": username, "password": "wrong"}).encode()
    connection = http.client.HTTPConnection(HOST, target.port, timeout=HTTP_TIMEOUT)
    try:
        connection.putrequest("POST", "/api/auth/token/")
        for value in forwarded:
            connection.putheader(FORWARDED, value)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.mark.asyncio
async def test_websocket_through_nginx_authenticates_joins_and_gets_its_message(
    proxied: tuple[Nginx, Server],
) -> None:
    nginx, _ = proxied
    api = Api(nginx)
    account = api.account("via-nginx")
    room = api.room(account)

    async with ws_connect(nginx, token=account.access, how="subprotocol", origin=ORIGIN) as ws:
        # The 101 and the subprotocol came back through nginx: the upgrade was forwarded.
        assert ws.subprotocol == SUBPROTOCOL
        await join(ws, room)
        message_id = await post(ws, room, "through nginx")
        echoed = await message_by_id(ws, message_id)
        assert echoed["body"] == "through nginx"
        assert echoed["room"] == room


@pytest.mark.asyncio
async def test_forwarded_for_is_set_by_nginx_not_appended(
    proxied: tuple[Nginx, Server],
) -> None:
    nginx, server = proxied
    api = Api(nginx)
    account = api.account("spoofer")
    user_id = api.expect(200, "GET", "/api/auth/me/", token=account.access)["id"]

    async with ws_connect(
        nginx,
        token=account.access,
        how="subprotocol",
        origin=ORIGIN,
        headers={FORWARDED: SPOOFED},
    ) as ws:
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"
    response = api.call(
        "POST",
        "/api/auth/token/",
        {"username": account.username, "password": "wrong"},
        headers={FORWARDED: f"{SPOOFED}, 198.51.100.7"},
    )
    assert response.status == 401, response.body
    # Two header lines: nginx must replace them all, not forward one of them.
    liar = unique_name("liar")
    assert _failed_login(nginx, liar, [SPOOFED, "198.51.100.8"]) == 401

    # Had nginx appended its peer ("203.0.113.9, 127.0.0.1"), daphne would have taken the
    # leftmost, and these records would name the client's choice instead of 127.0.0.1.
    records = {
        "socket": ("realtime.connection", f"ws connect user={user_id} "),
        "login": (
            "realtime.security",
            "api authentication failed",
            f"username={account.username!r}",
        ),
        "two headers": ("realtime.security", "api authentication failed", f"username={liar!r}"),
    }
    found = wait_until(
        lambda: _find_all(server, records),
        timeout=10,
        what=f"the socket's and the failed logins' records\n{server.output()}",
    )
    for what, message in found.items():
        assert f" addr={HOST} " in message, f"{what}: {message}"
    everything = server.all_output()
    for claimed in (SPOOFED, "198.51.100.7", "198.51.100.8"):
        assert claimed not in everything, f"{claimed} reached daphne:\n{server.output()}"


@pytest.mark.asyncio
async def test_ticket_urls_reach_no_log(proxied: tuple[Nginx, Server]) -> None:
    nginx, server = proxied
    api = Api(nginx)
    account = api.account("ticketed")
    ticket = api.ticket(account)

    async with ws_connect(nginx, query=f"?ticket={ticket}", origin=ORIGIN) as ws:
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"

    # nginx writes an upgraded request's line when the connection ends, a moment after the
    # client's close.
    upgraded = '"GET /ws/chat/ HTTP/1.1" 101 '
    lines = wait_until(
        lambda: [line for line in nginx.access_lines() if upgraded in line],
        timeout=10,
        what=f"the /ws/chat/ line in nginx's access log\n{nginx.output()}",
    )
    assert lines[-1].startswith(f"{HOST} - ["), lines[-1]
    assert any(
        '"POST /api/realtime/ticket/ HTTP/1.1" 201 ' in line for line in nginx.access_lines()
    )

    for name, output in (("nginx", nginx.all_output()), ("daphne", server.all_output())):
        for secret in (ticket, account.access, account.refresh):
            assert secret not in output, f"a credential reached {name}'s output"
        assert "ticket=" not in output, f"a ticket URL reached {name}'s output"


def test_login_throttle_counts_the_real_client_whatever_it_claims(
    start_proxied: Callable[..., tuple[Nginx, Server]],
) -> None:
    # No Redis: the throttle's counts live in this daphne alone, untouched by other tests.
    nginx, server = start_proxied(None, name="throttled", THROTTLE_LOGIN="3/min")
    username = unique_name("guessed")

    claims = [f"198.51.100.{n}" for n in range(1, 5)]
    statuses = [_failed_login(nginx, username, [claim]) for claim in claims]
    assert statuses == [401, 401, 401, 429], nginx.output()

    # What an appending proxy would forward, sent to daphne directly: it believes the
    # leftmost address, so a new claim is a new client with a fresh allowance.
    assert _failed_login(server, username, ["198.51.100.99, 127.0.0.1"]) == 401
    wait_until(
        lambda: _find(server, "realtime.security", " addr=198.51.100.99 "),
        timeout=10,
        what=f"the directly claimed address in the log\n{server.output()}",
    )
    everything = server.all_output()
    for claim in claims:
        assert claim not in everything, f"{claim} reached daphne through nginx"


# Rejected by the application's validation at once (no password to hash), so the requests of
# a burst reach nginx back to back.
INCOMPLETE_LOGIN = {"username": "nobody-in-particular"}
BURST = 60


def _nginx_refused(response: HttpResponse) -> bool:
    """nginx's own 429 page, not the application's JSON `throttled`."""
    return (
        response.status == 429
        and isinstance(response.body, str)
        and "429 Too Many Requests" in response.body
    )


def test_nginx_answers_a_burst_at_the_password_doors_429_but_not_a_normal_pace(
    start_proxied: Callable[..., tuple[Nginx, Server]],
) -> None:
    # Its own nginx, so the rate-limit zones start empty whatever other tests sent.
    nginx, _ = start_proxied(None, name="paced")
    api = Api(nginx)

    # A person retyping a password: an attempt every second or so is always let through.
    for _ in range(3):
        response = api.call("POST", "/api/auth/token/", INCOMPLETE_LOGIN)
        assert response.status == 400, f"{response.status} {response.body}\n{nginx.output()}"
        time.sleep(1.1)

    # A script: back to back, past the burst nginx allows.
    burst = [api.call("POST", "/api/auth/token/", INCOMPLETE_LOGIN) for _ in range(BURST)]
    statuses = [r.status for r in burst]
    assert all(status == 400 for status in statuses[:10]), statuses
    refused = [r for r in burst if r.status == 429]
    assert len(refused) >= BURST // 2, statuses
    assert all(_nginx_refused(r) for r in refused), refused[0].body
    # Only 400s and nginx's 429s: nothing refused ever reached daphne.
    assert set(statuses) == {400, 429}, statuses

    # The admin's login form is the same door for the same address, and so is the login
    # spelled another way that daphne would route to the same view...
    assert _nginx_refused(api.call("POST", "/admin/login/", {}))
    assert _nginx_refused(api.call("POST", "/api/auth/%74oken/", INCOMPLETE_LOGIN))
    # ...while the rest of the API and the site stay under the general rate only.
    assert api.call("POST", "/api/auth/token/refresh/", {"refresh": "x"}).status != 429
    assert api.call("GET", "/healthz").status == 200

    # A rate, not a ban: a moment later the door lets an attempt through again.
    time.sleep(1.5)
    assert api.call("POST", "/api/auth/token/", INCOMPLETE_LOGIN).status == 400
    assert "limiting requests" in nginx.error_log.read_text()


def test_shipped_chat_conf_passes_nginx_t(shipped_site: SiteNginx) -> None:
    """The check docs/deployment.md has operators run before every reload."""
    result = shipped_site.test_config()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def _get(port: int, path: str, tls: ssl.SSLContext | None = None) -> http.client.HTTPResponse:
    """One GET, redirects not followed."""
    if tls is None:
        connection = http.client.HTTPConnection(HOST, port, timeout=HTTP_TIMEOUT)
    else:
        connection = http.client.HTTPSConnection(HOST, port, timeout=HTTP_TIMEOUT, context=tls)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


@pytest.mark.asyncio
async def test_shipped_chat_conf_serves_health_redirects_and_websockets_over_tls(
    proxied: tuple[Nginx, Server], shipped_site: SiteNginx
) -> None:
    site = shipped_site.start()
    tls = ssl.create_default_context(cafile=site.workdir / "fullchain.pem")
    # The certificate names chat.example.com; the connection goes to 127.0.0.1.
    tls.check_hostname = False

    # Port 80: the health probe reaches daphne with the client's Host (ALLOWED_HOSTS), and
    # nothing else is served in clear.
    health = _get(site.port, "/healthz")
    assert health.status == 200, site.output()
    # An encoded line break stays encoded in Location: no header of the client's choosing.
    injection = "/x%0d%0aSet-Cookie:%20injected=1?a=b"
    redirect = _get(site.port, injection)
    assert redirect.status == 301
    assert redirect.getheader("Location") == f"https://{HOST}{injection}"
    assert redirect.getheader("Set-Cookie") is None

    # Port 443: TLS ends at nginx, and the upgrade still works behind it.
    assert _get(site.https_port, "/healthz", tls).status == 200
    account = Api(proxied[0]).account("tls")
    async with ws_connect(
        site, token=account.access, how="subprotocol", origin=ORIGIN, ssl=tls
    ) as ws:
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"
