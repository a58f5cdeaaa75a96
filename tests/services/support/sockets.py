"""WebSocket clients (the `websockets` package) speaking the chat protocol."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from tests.services.support.common import RECV_TIMEOUT, SUBPROTOCOL
from tests.services.support.daphne import Server
from tests.services.support.nginx import Nginx


def ws_connect(
    server: Server | Nginx,
    *,
    token: str | None = None,
    how: str = "header",
    query: str = "",
    path: str = "/ws/chat/",
    origin: str | None = None,
    headers: dict[str, str] | None = None,
    open_timeout: float = 10,
    **kwargs: Any,
) -> connect:
    """An unopened websockets connection; `how` picks where the access token travels."""
    headers = dict(headers or {})
    subprotocols = [SUBPROTOCOL]
    if token is not None and how == "header":
        headers["Authorization"] = f"Bearer {token}"
    elif token is not None and how == "subprotocol":
        subprotocols.append(f"bearer.{token}")
    elif token is not None:
        raise ValueError(f"unknown credential placement {how!r}")
    return connect(
        server.ws_url.removesuffix("/ws/chat/") + path + query,
        additional_headers=headers,
        subprotocols=subprotocols,
        origin=origin,
        open_timeout=open_timeout,
        close_timeout=5,
        proxy=None,
        **kwargs,
    )


async def recv_json(ws: ClientConnection, within: float = RECV_TIMEOUT) -> dict[str, Any]:
    async with asyncio.timeout(within):
        return json.loads(await ws.recv())


async def recv_until(
    ws: ClientConnection,
    predicate: Callable[[dict[str, Any]], bool],
    within: float = RECV_TIMEOUT,
) -> dict[str, Any]:
    """The first frame matching `predicate`, skipping others (live messages, pongs...)."""
    async with asyncio.timeout(within):
        while True:
            frame = json.loads(await ws.recv())
            if predicate(frame):
                return frame


async def request(ws: ClientConnection, frame: dict[str, Any], within: float = RECV_TIMEOUT):
    """Send a frame with a fresh ref and return the reply carrying that ref."""
    ref = uuid.uuid4().hex
    await ws.send(json.dumps({**frame, "ref": ref}))
    return await recv_until(ws, lambda f: f.get("ref") == ref, within)


async def join(ws: ClientConnection, room: str, within: float = RECV_TIMEOUT) -> dict[str, Any]:
    reply = await request(ws, {"type": "join", "room": room}, within)
    assert reply["type"] == "joined", reply
    return reply


async def post(ws: ClientConnection, room: str, body: str) -> int:
    """Send a chat message and return the id from its ack."""
    reply = await request(ws, {"type": "send", "room": room, "body": body})
    assert reply["type"] == "ack", reply
    return reply["id"]


async def next_message(ws: ClientConnection, within: float = RECV_TIMEOUT) -> dict[str, Any]:
    return await recv_until(ws, lambda f: f["type"] == "message", within)


async def message_by_id(
    ws: ClientConnection, message_id: int, within: float = RECV_TIMEOUT
) -> dict[str, Any]:
    """The live `message` frame with this id; other frames (own echoes...) are skipped."""
    return await recv_until(ws, lambda f: f["type"] == "message" and f["id"] == message_id, within)


async def read_until_closed(
    ws: ClientConnection, within: float = RECV_TIMEOUT
) -> tuple[list[dict[str, Any]], Close | None]:
    """Frames received until the server ended the connection, and the close frame it sent
    (None when it sent none: the connection was dropped, which clients see as 1006)."""
    frames = []
    async with asyncio.timeout(within):
        try:
            while True:
                frames.append(json.loads(await ws.recv()))
        except ConnectionClosed as closed:
            return frames, closed.rcvd


async def expect_closed(ws: ClientConnection, within: float = RECV_TIMEOUT) -> Close | None:
    """Read until the server ends the connection; the close frame it sent, None if none."""
    _, rcvd = await read_until_closed(ws, within)
    return rcvd


async def refused_with(connection: connect, within: float = RECV_TIMEOUT) -> int | None:
    """Open a connection the server must refuse and return its close code.

    Refusals complete the handshake and then close with a code, so the code is only seen
    from the first read; None means no close frame arrived at all.
    """
    async with connection as ws:
        rcvd = await expect_closed(ws, within)
        return None if rcvd is None else rcvd.code


async def drain(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Frames received within `seconds` (for asserting that something did *not* arrive)."""
    frames = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                frames.append(json.loads(await ws.recv()))
    return frames


def ids(messages: Iterable[dict[str, Any]]) -> list[int]:
    return [m["id"] for m in messages]
