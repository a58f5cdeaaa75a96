"""Delivery guarantees across real daphne processes on PostgreSQL (docs/reliability.md):
contiguous seqs under concurrent senders, resume with `since` on another process, the
honest `recovered: false`, and a retried send stored once."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.services.support.admin import django_shell
from tests.services.support.api import Api
from tests.services.support.daphne import Server
from tests.services.support.sockets import (
    drain,
    join,
    next_message,
    recv_until,
    request,
    ws_connect,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

SENDERS_PER_PROCESS = 4
MESSAGES_PER_SENDER = 10


async def test_concurrent_senders_on_two_processes_get_contiguous_seqs(
    server_a: Server, server_b: Server
) -> None:
    api = Api(server_a)
    owner = api.account()
    room = api.room(owner)
    total = 2 * SENDERS_PER_PROCESS * MESSAGES_PER_SENDER

    async def sender(server: Server, n: int) -> list[int]:
        account = api.account()
        async with ws_connect(server, token=account.access) as ws:
            await join(ws, room)
            for i in range(MESSAGES_PER_SENDER):
                await ws.send(json.dumps({"type": "send", "room": room, "body": f"{n}-{i}"}))
            acks = []
            while len(acks) < MESSAGES_PER_SENDER:
                frame = await recv_until(ws, lambda f: f["type"] in ("ack", "error"))
                assert frame["type"] == "ack", frame
                acks.append(frame["seq"])
            return acks

    async with ws_connect(server_a, token=owner.access) as listener:
        await join(listener, room)
        senders = [
            sender(server, n)
            for n, server in enumerate([server_a, server_b] * SENDERS_PER_PROCESS)
        ]
        acked = [seq for acks in await asyncio.gather(*senders) for seq in acks]
        heard = [(await next_message(listener, within=30))["seq"] for _ in range(total)]
        assert [f for f in await drain(listener, 0.5) if f["type"] == "message"] == []
    assert sorted(acked) == list(range(1, total + 1))
    # Every message once, in seq order, whichever process stored or broadcast it.
    assert heard == list(range(1, total + 1))


async def test_a_client_resumes_on_the_other_process_with_exactly_what_it_missed(
    server_a: Server, server_b: Server
) -> None:
    api = Api(server_a)
    reader, writer = api.account(), api.account()
    room = api.room(writer)
    async with ws_connect(server_b, token=writer.access) as speaker:
        await join(speaker, room)
        async with ws_connect(server_a, token=reader.access) as ws:
            joined = await join(ws, room)
            for n in range(3):
                await request(speaker, {"type": "send", "room": room, "body": f"seen {n}"})
            seen = [(await next_message(ws))["seq"] for _ in range(3)]
        for n in range(5):
            await request(speaker, {"type": "send", "room": room, "body": f"missed {n}"})
        async with ws_connect(server_b, token=reader.access) as ws:
            resumed = await request(
                ws, {"type": "join", "room": room, "since": seen[-1], "epoch": joined["epoch"]}
            )
            assert resumed["recovered"] is True
            assert [m["body"] for m in resumed["history"]] == [f"missed {n}" for n in range(5)]
            assert [m["seq"] for m in resumed["history"]] == [4, 5, 6, 7, 8]
            await request(speaker, {"type": "send", "room": room, "body": "live"})
            live = await next_message(ws)
            assert (live["seq"], live["body"]) == (9, "live")
            assert [f for f in await drain(ws, 0.5) if f["type"] == "message"] == []


async def test_recovered_false_when_more_was_missed_than_one_reply_holds(
    server_a: Server, server_b: Server
) -> None:
    api = Api(server_a)
    account = api.account()
    room = api.room(account)
    async with ws_connect(server_a, token=account.access) as ws:
        joined = await join(ws, room)
    django_shell(
        server_a,
        "from realtime.models import Room; from realtime.services import message_store; "
        f"room = Room.objects.get(slug={room!r}); "
        "[message_store(room=room, author=None, body=f'm{n}') for n in range(80)]",
    )
    async with ws_connect(server_b, token=account.access) as ws:
        resumed = await request(
            ws, {"type": "join", "room": room, "since": 0, "epoch": joined["epoch"]}
        )
    assert resumed["recovered"] is False
    assert resumed["seq"] == 80
    newest = [m["seq"] for m in resumed["history"]]
    assert newest == list(range(80 - len(newest) + 1, 81))
    # The documented way to fill the hole: REST pages forward from `since`.
    filled, after = [], 0
    while after + 1 < newest[0]:
        page = api.expect(
            200, "GET", f"/api/rooms/{room}/messages/?after={after}", token=account.access
        )
        filled += [m["seq"] for m in page["messages"] if m["seq"] < newest[0]]
        after = page["messages"][-1]["seq"]
    assert filled + newest == list(range(1, 81))


async def test_a_send_retried_after_a_reconnect_is_stored_once(
    server_a: Server, server_b: Server
) -> None:
    api = Api(server_a)
    sender, listener_account = api.account(), api.account()
    room = api.room(sender)
    frame = {"type": "send", "room": room, "body": "only once", "client_id": "retry-1"}
    async with ws_connect(server_a, token=listener_account.access) as listener:
        await join(listener, room)
        async with ws_connect(server_a, token=sender.access) as ws:
            await join(ws, room)
            # The connection drops before the ack is read: the client cannot know.
            await ws.send(json.dumps(frame))
        async with ws_connect(server_b, token=sender.access) as ws:
            await join(ws, room)
            ack = await request(ws, frame)
        first = await next_message(listener)
        assert (ack["type"], ack["seq"], ack["id"]) == ("ack", first["seq"], first["id"])
        assert [f for f in await drain(listener, 1) if f["type"] == "message"] == []
    history = api.expect(200, "GET", f"/api/rooms/{room}/messages/", token=sender.access)
    assert [m["body"] for m in history["messages"]] == ["only once"]
