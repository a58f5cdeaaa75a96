"""Frame size limits at both levels: daphne's transport cap and the consumer's own cap."""

from __future__ import annotations

import pytest

from realtime.protocol import CloseCode
from tests.services.support.api import Api
from tests.services.support.daphne import Server
from tests.services.support.sockets import (
    expect_closed,
    read_until_closed,
    recv_json,
    request,
    ws_connect,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

# Over TRANSPORT_MAX_MESSAGE_BYTES (64 KiB): daphne must end the socket itself.
OVER_TRANSPORT_CAP = 70_000
# Over MAX_FRAME_BYTES (56 KiB) but under the transport cap: the consumer answers it.
OVER_FRAME_CAP = 60_000


async def test_frame_over_the_consumer_cap_gets_too_large_and_socket_lives_on(
    server_a: Server, api: Api
) -> None:
    account = api.account()
    async with ws_connect(server_a, token=account.access, compression=None) as ws:
        await ws.send("x" * OVER_FRAME_CAP)
        error = await recv_json(ws)
        assert (error["type"], error["code"]) == ("error", "too_large")
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_frame_over_the_transport_cap_ends_the_socket_before_the_app(
    server_a: Server, api: Api, compression: str | None
) -> None:
    # With deflate the frame on the wire is tiny: the cap must hold on the inflated size.
    account = api.account()
    async with ws_connect(server_a, token=account.access, compression=compression) as ws:
        await ws.send("x" * OVER_TRANSPORT_CAP)
        frames, closed = await read_until_closed(ws, within=10)
    # A `too_large` error frame would mean the consumer read the whole message.
    assert frames == []
    assert closed is None or closed.code == CloseCode.MESSAGE_TOO_BIG
    assert server_a.alive()


async def test_frame_over_the_transport_cap_is_closed_with_1009(
    server_a: Server, api: Api
) -> None:
    account = api.account()
    async with ws_connect(server_a, token=account.access, compression=None) as ws:
        await ws.send("x" * OVER_TRANSPORT_CAP)
        closed = await expect_closed(ws, within=10)
    assert closed is not None, "the connection was dropped without a close frame (1006)"
    assert closed.code == CloseCode.MESSAGE_TOO_BIG


async def test_plain_daphne_lets_the_consumer_refuse_what_serve_would_close(
    plain_server: Server,
) -> None:
    # docs/deployment.md: plain daphne's own cap is 1 MiB, so a message over 64 KiB reaches
    # the consumer, whose frame cap answers it; the socket lives on.
    account = Api(plain_server).account()
    async with ws_connect(plain_server, token=account.access, compression=None) as ws:
        await ws.send("x" * OVER_TRANSPORT_CAP)
        error = await recv_json(ws)
        assert (error["type"], error["code"]) == ("error", "too_large")
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"
