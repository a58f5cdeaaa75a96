"""GET /metrics on real daphne processes: what they count, and who may read it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from realtime.protocol import CloseCode
from tests.services.support.api import Api, http_request
from tests.services.support.common import ORIGIN, wait_until
from tests.services.support.daphne import Server
from tests.services.support.nginx import Nginx
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import (
    expect_closed,
    join,
    next_message,
    post,
    recv_until,
    refused_with,
    ws_connect,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: Server | Nginx) -> Samples:
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=5) as response:  # noqa: S310
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_each_process_counts_its_sockets_frames_errors_closes_and_fan_out(
    server_a: Server, server_b: Server, api: Api
) -> None:
    owner, reader = api.account("metered"), api.account("meterread")
    room = api.room(owner)
    before_a, before_b = scrape(server_a), scrape(server_b)

    assert await refused_with(ws_connect(server_a, origin=ORIGIN)) == CloseCode.UNAUTHENTICATED
    async with (
        ws_connect(server_a, token=owner.access) as writer,
        ws_connect(server_b, token=reader.access) as listener,
    ):
        await join(writer, room)
        await join(listener, room)
        await writer.send("{not json")
        # (The listener's presence may arrive first.)
        error = await recv_until(writer, lambda frame: frame["type"] == "error")
        assert error["code"] == "invalid_json"
        message_id = await post(writer, room, "counted")
        assert (await next_message(listener))["id"] == message_id
        during_a, during_b = scrape(server_a), scrape(server_b)

    # The sockets are counted while open, by the process that holds each.
    assert grew(before_a, during_a, "chat_sockets_open") == 1
    assert grew(before_b, during_b, "chat_sockets_open") == 1
    assert grew(before_a, during_a, "chat_handshakes_total", outcome="accepted") == 1
    assert grew(before_a, during_a, "chat_handshakes_total", outcome="no_credentials") == 1
    assert grew(before_a, during_a, "chat_closes_total", code="4101") == 1
    # join, the bad frame, send: three frames in; joined, error, ack at least out.
    assert grew(before_a, during_a, "chat_frames_received_total") == 3
    assert grew(before_a, during_a, "chat_frames_sent_total") >= 3
    assert grew(before_a, during_a, "chat_error_frames_total", code="invalid_json") == 1
    # The message crossed Redis: published by A, timed on its arrival at B.
    assert grew(before_a, during_a, "chat_channel_layer_seconds_count", operation="group_send")
    assert grew(before_b, during_b, "chat_fanout_seconds_count") >= 1
    # ...and written to the socket straight from the layer (realtime.writer), whatever
    # middleware wraps the socket's `send`.
    assert grew(before_b, during_b, "chat_frames_written_directly_total") == 1
    assert grew(before_b, during_b, "chat_frames_sent_total") >= 2  # joined, the message
    # Standard process metrics come with the client library.
    assert value(during_a, "process_resident_memory_bytes") > 0

    def closed_and_counted() -> bool:
        after = scrape(server_a)
        return (
            grew(before_a, after, "chat_sockets_open") == 0
            and grew(before_a, after, "chat_disconnects_total", code="1000") >= 1
        )

    wait_until(closed_and_counted, timeout=10, what="the closed socket counted")


async def test_a_close_by_the_server_is_counted_by_its_code(server_a: Server, api: Api) -> None:
    account = api.account("metviol")
    before = scrape(server_a)
    async with ws_connect(server_a, token=account.access) as ws:
        for _ in range(10):  # MAX_PROTOCOL_ERRORS
            await ws.send("{not json")
        close = await expect_closed(ws)
    assert close is not None
    assert close.code == CloseCode.PROTOCOL_VIOLATION
    after = scrape(server_a)
    assert grew(before, after, "chat_closes_total", code="4400") == 1
    assert grew(before, after, "chat_error_frames_total", code="invalid_json") >= 1


async def test_metrics_answer_only_the_allowed_addresses(
    start_server: Callable[..., Server], redis_server: RedisServer
) -> None:
    closed = start_server(
        redis_server.url, name="metrics-closed", METRICS_ALLOWED_NETWORKS="10.0.0.0/8"
    )
    refused = http_request("GET", closed.base_url + "/metrics")
    assert refused.status == 404
    assert "chat_" not in str(refused.body)
    wait_until(
        lambda: any(
            r["message"].startswith("http metrics refused addr=127.0.0.1")
            for r in closed.log_records()
        ),
        timeout=5,
        what="the refusal logged",
    )
    # The rest of the site is unaffected.
    assert http_request("GET", closed.base_url + "/healthz").status == 200

    opened = start_server(redis_server.url, name="metrics-open")
    assert http_request("POST", opened.base_url + "/metrics", {}).status == 405
    assert value(scrape(opened), "chat_sockets_open") == 0


async def test_nginx_does_not_serve_metrics(proxied: tuple[Nginx, Server]) -> None:
    nginx, daphne = proxied
    # Through the proxy every client has the proxy's (allowed) address: nginx answers itself.
    through_nginx = http_request("GET", nginx.base_url + "/metrics")
    assert through_nginx.status == 404
    assert "chat_" not in json.dumps(through_nginx.body)
    # Prometheus scrapes each daphne process at its own address.
    assert "chat_sockets_open" in {name for name, _ in scrape(daphne)}
