"""A burst of messages to a busy room reaches every member, exactly once and in order.

Ten senders using their whole rate-limit burst put 200 messages in flight at once, for 100
sockets on one process: 20,000 deliveries. The channel layer publishes each message once;
the process decodes it once and writes it to each socket in seq order, queueing (up to
CHANNEL_LAYER_CAPACITY per socket) only what must wait for a hole to be filled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.services.support.api import Api
from tests.services.support.daphne import Server
from tests.services.support.sockets import join, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

RECEIVERS = 100
SENDERS = 10
# A sender's whole burst allowance (RATE_BURST), sent without waiting for acks.
MESSAGES_PER_SENDER = 20
DELIVERY_TIMEOUT = 60.0


async def _collect(ws: ClientConnection, bodies: set[str]) -> list[int]:
    """Read until every body arrived; the seqs of the messages in arrival order."""
    seen: set[str] = set()
    seqs: list[int] = []
    while len(seen) < len(bodies):
        frame = json.loads(await ws.recv())
        if frame["type"] == "message" and frame["body"] in bodies:
            seen.add(frame["body"])
            seqs.append(frame["seq"])
    return seqs


async def _discard(ws: ClientConnection) -> None:
    """Keep reading a sender's socket, so its unread echoes cannot stall its close."""
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


async def test_burst_to_a_busy_room_reaches_every_member(server_a: Server, api: Api) -> None:
    owner = api.account("fan")
    room = api.room(owner, prefix="fanout")
    bodies = {f"m{sender}-{n}" for sender in range(SENDERS) for n in range(MESSAGES_PER_SENDER)}
    sockets: list[ClientConnection] = []
    drains: list[asyncio.Task] = []
    try:
        for _ in range(RECEIVERS + SENDERS):
            sockets.append(await ws_connect(server_a, token=owner.access).__aenter__())
            await join(sockets[-1], room)
        receivers, senders = sockets[:RECEIVERS], sockets[RECEIVERS:]
        collectors = [asyncio.create_task(_collect(ws, bodies)) for ws in receivers]
        drains = [asyncio.create_task(_discard(ws)) for ws in senders]
        for n in range(MESSAGES_PER_SENDER):
            for sender, ws in enumerate(senders):
                await ws.send(json.dumps({"type": "send", "room": room, "body": f"m{sender}-{n}"}))

        _, pending = await asyncio.wait(collectors, timeout=DELIVERY_TIMEOUT)
        for task in pending:
            task.cancel()
        assert not pending, f"{len(pending)} of {RECEIVERS} receivers lost messages"
        for task in collectors:
            seqs = task.result()
            # Each message once, in the room's order.
            assert seqs == sorted(set(seqs)), seqs
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))
        for task in drains:
            await task
