"""Redis over TLS: every connection the project makes to Redis is encrypted and verified, or
refused.

The redis-server here speaks TLS only (`--port 0`: it has no plaintext port at all) with a
certificate from a throwaway CA for 127.0.0.1, and requires clients to present a certificate
of the same CA (mutual TLS). Two daphne processes given `REDIS_URL=rediss://...`,
`REDIS_TLS_CA_FILE` and a client certificate chat through it: the channel layer carries a
message from one to the other, sockets take their connection slots (the project's own
client), a ticket bought on one is spent on the other (the cache), logins are throttled
(the cache), and /healthz says Redis is ok. A process that cannot verify the server, or that
the server cannot verify, fails closed: /healthz 503, sockets refused with 4013, and it says
why at start-up and in its log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from realtime.protocol import CloseCode
from tests.services.support.api import Api
from tests.services.support.common import ORIGIN
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer, RedisTls
from tests.services.support.sockets import (
    join,
    message_by_id,
    post,
    refused_with,
    ws_connect,
)
from tests.services.support.tls import Authority, Issued

pytestmark = [pytest.mark.services, pytest.mark.asyncio]


@dataclass(frozen=True)
class Pki:
    ca: Authority
    server: Issued
    client: Issued
    # Another CA, with a client certificate of its own: what the server must not trust.
    other_ca: Authority
    other_client: Issued
    # A server certificate of the right CA, for a name the clients do not connect to.
    misnamed_server: Issued


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = Authority.create(tmp_path, "chat-redis")
    other = Authority.create(tmp_path, "elsewhere")
    return Pki(
        ca=ca,
        server=ca.issue(tmp_path, "redis", hosts=("127.0.0.1",)),
        client=ca.issue(tmp_path, "chat"),
        other_ca=other,
        other_client=other.issue(tmp_path, "stranger"),
        misnamed_server=ca.issue(tmp_path, "redis-elsewhere", hosts=("redis.invalid",)),
    )


def tls_env(*, ca: Authority | None, client: Issued | None) -> dict[str, str]:
    env = {}
    if ca is not None:
        env["REDIS_TLS_CA_FILE"] = str(ca.cert_file)
    if client is not None:
        env["REDIS_TLS_CERT_FILE"] = str(client.cert_file)
        env["REDIS_TLS_KEY_FILE"] = str(client.key_file)
    return env


async def test_two_processes_chat_through_redis_over_mutual_tls(
    pki: Pki, start_redis: Callable[..., RedisServer], start_server: Callable[..., Server]
) -> None:
    redis_server = start_redis(tls=RedisTls(pki.ca.cert_file, pki.server, client=pki.client))
    assert redis_server.url.startswith("rediss://127.0.0.1:")
    env = tls_env(ca=pki.ca, client=pki.client)
    server_a = start_server(redis_server.url, name="tls-a", **env)
    server_b = start_server(redis_server.url, name="tls-b", **env)
    for server in (server_a, server_b):
        assert Api(server).health().body == {
            "status": "ok",
            "checks": {"database": "ok", "redis": "ok"},
        }, server.output()

    # Registration and login are throttled through the cache: over TLS too.
    alice, bob = Api(server_a).account("alice"), Api(server_b).account("bob")
    room = Api(server_a).room(alice)
    # Bought on one process, spent on the other: the cache is shared over TLS.
    ticket = Api(server_a).ticket(alice)

    async with contextlib.AsyncExitStack() as stack:
        alice_ws = await stack.enter_async_context(ws_connect(server_a, token=alice.access))
        bob_ws = await stack.enter_async_context(ws_connect(server_b, token=bob.access))
        alice_on_b = await stack.enter_async_context(
            ws_connect(server_b, query=f"?ticket={ticket}", origin=ORIGIN)
        )
        for ws in (alice_ws, bob_ws, alice_on_b):
            await join(ws, room)

        there = await post(alice_ws, room, "from A, over TLS")
        for ws in (bob_ws, alice_on_b):
            assert (await message_by_id(ws, there))["body"] == "from A, over TLS"
        back = await post(bob_ws, room, "from B, over TLS")
        assert (await message_by_id(alice_ws, back))["body"] == "from B, over TLS"

    for server in (server_a, server_b):
        assert server.alive(), server.output()
        assert "does not answer" not in server.stderr_file.read_text(), server.output()


@dataclass(frozen=True)
class BadTls:
    # The certificate the redis-server presents.
    server: Callable[[Pki], Issued]
    # The process's REDIS_TLS_* variables.
    env: Callable[[Pki], dict[str, str]]
    # What the start-up warning says (ssl's reason, through redis-py).
    reason: str


# A process that cannot complete the TLS handshake: each fails closed the same way. The
# first test is the counterpart: the right CA, the right name, a client certificate.
BAD_TLS = {
    # The server's certificate was not signed by the CA the process trusts.
    "another_ca": BadTls(
        lambda pki: pki.server,
        lambda pki: tls_env(ca=pki.other_ca, client=pki.client),
        "certificate verify failed",
    ),
    # No CA file: the system's CAs, which never signed a throwaway CA's certificate.
    "system_cas": BadTls(
        lambda pki: pki.server,
        lambda pki: tls_env(ca=None, client=pki.client),
        "certificate verify failed",
    ),
    # The trusted CA's certificate, for another host than the URL's: host names are checked.
    "another_name": BadTls(
        lambda pki: pki.misnamed_server,
        lambda pki: tls_env(ca=pki.ca, client=pki.client),
        "certificate verify failed",
    ),
    # The server requires a client certificate; the process has none.
    "no_client_certificate": BadTls(
        lambda pki: pki.server,
        lambda pki: tls_env(ca=pki.ca, client=None),
        "ConnectionError",
    ),
    # A client certificate the server's CA did not sign.
    "foreign_client_certificate": BadTls(
        lambda pki: pki.server,
        lambda pki: tls_env(ca=pki.ca, client=pki.other_client),
        "ConnectionError",
    ),
}


@pytest.mark.parametrize("case", BAD_TLS)
async def test_a_process_that_cannot_complete_the_tls_handshake_fails_closed(
    case: str,
    pki: Pki,
    api: Api,
    start_redis: Callable[..., RedisServer],
    start_server: Callable[..., Server],
) -> None:
    bad = BAD_TLS[case]
    redis_server = start_redis(tls=RedisTls(pki.ca.cert_file, bad.server(pki), client=pki.client))
    # The account comes from a healthy process sharing the database (and the signing key).
    account = api.account(case.replace("_", "-"))
    server = start_server(redis_server.url, name=f"tls-{case}", **bad.env(pki))

    health = Api(server).health()
    assert health.status == 503, server.output()
    assert health.body == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "unavailable"},
    }
    assert await refused_with(ws_connect(server, token=account.access)) == (
        CloseCode.TRY_AGAIN_LATER
    )
    assert server.alive(), server.output()

    stderr = server.stderr_file.read_text()
    warning = f"Warning: Redis at 127.0.0.1:{redis_server.port} does not answer"
    assert warning in stderr, server.output()
    assert bad.reason in stderr, server.output()
    assert "health check failed service=redis error=ConnectionError" in stderr, server.output()
    records = [r["message"] for r in server.log_records()]
    assert any("ws connect failed" in m and "error=ConnectionError" in m for m in records), records
