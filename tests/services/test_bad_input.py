"""Frames and rooms built to break the server, through a real daphne under both ways of
running it: each gets its documented answer and the socket (and the room) keep working."""

from __future__ import annotations

import json

import pytest

from tests.services.support.admin import django_shell
from tests.services.support.api import Api
from tests.services.support.daphne import Server
from tests.services.support.sockets import (
    join,
    post,
    read_until_closed,
    recv_json,
    request,
    ws_connect,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

# daphne's cap on one WebSocket message, in both directions (TRANSPORT_MAX_MESSAGE_BYTES).
TRANSPORT_CAP = 64 * 1024
MAX_BODY_CHARS = 4000


@pytest.mark.parametrize(
    "character",
    [
        pytest.param("😀", id="four-byte-utf8"),
        # Written as a six-byte \\u0001 escape in JSON: the most bytes per character.
        pytest.param("\x01", id="escaped-control"),
    ],
)
async def test_a_room_of_the_largest_messages_can_be_joined(
    either_server: Server, character: str
) -> None:
    api = Api(either_server)
    account = api.account()
    room = api.room(account)
    body = character * MAX_BODY_CHARS
    django_shell(
        either_server,
        f"from realtime.models import Room; from realtime.services import message_store; "
        f"room = Room.objects.get(slug={room!r}); "
        f"[message_store(room=room, author=None, body={body!r}) for _ in range(50)]",
    )
    async with ws_connect(either_server, token=account.access) as ws:
        await ws.send(json.dumps({"type": "join", "room": room, "ref": "j"}))
        raw = await ws.recv()
        assert len(raw.encode()) <= TRANSPORT_CAP
        joined = json.loads(raw)
        assert joined["type"] == "joined", joined
        # The newest messages that fit, whole, and the flag that says to page back for more.
        assert joined["has_more"] is True
        assert 1 <= len(joined["history"]) < 50
        assert {m["body"] for m in joined["history"]} == {character * MAX_BODY_CHARS}
        ids = [m["id"] for m in joined["history"]]
        assert ids == sorted(ids)
        page = api.expect(
            200, "GET", f"/api/rooms/{room}/messages/?limit=50", token=account.access
        )
        assert ids == [m["id"] for m in page["messages"]][-len(ids) :]
        # The room still works for everyone.
        message_id = await post(ws, room, "still usable")
        assert message_id > ids[-1]


async def test_a_lone_surrogate_is_refused_and_the_socket_lives_on(
    either_server: Server,
) -> None:
    account = Api(either_server).account()
    async with ws_connect(either_server, token=account.access) as ws:
        for text in (
            '{"type": "ping", "ref": "\\ud800"}',
            '{"type": "send", "room": "lobby", "body": "a\\udfff"}',
            '{"type": "ping", "\\udc00": 1}',
        ):
            await ws.send(text)
            error = await recv_json(ws)
            assert (error["type"], error["code"], error["ref"]) == (
                "error",
                "invalid_message",
                None,
            )
        assert (await request(ws, {"type": "ping"}))["type"] == "pong"
    assert "Traceback" not in either_server.all_output()


async def test_deeply_nested_json_is_a_violation_not_a_crash(either_server: Server) -> None:
    account = Api(either_server).account()
    nested = "[" * 20_000 + "]" * 20_000
    async with ws_connect(either_server, token=account.access) as ws:
        for _ in range(10):
            await ws.send(nested)
        frames, closed = await read_until_closed(ws)
    assert [frame["code"] for frame in frames] == ["invalid_json"] * 10
    assert closed is not None
    assert closed.code == 4400
    assert "Traceback" not in either_server.all_output()


async def test_the_longest_body_is_accepted_however_it_is_escaped(either_server: Server) -> None:
    api = Api(either_server)
    account = api.account()
    room = api.room(account)
    body = "😀" * MAX_BODY_CHARS
    # Every character as a surrogate-pair escape: 12 bytes each, 48,000 for the body.
    escaped = json.dumps({"type": "send", "room": room, "body": body, "ref": "s"})
    assert len(escaped) > 48_000
    async with ws_connect(either_server, token=account.access) as ws:
        await join(ws, room)
        await ws.send(escaped)
        reply = await recv_json(ws)
        assert reply["type"] == "ack", reply
        message = await recv_json(ws)
    assert message["body"] == body
    # One character more is refused by the schema, not by the frame size.
    async with ws_connect(either_server, token=account.access) as ws:
        await join(ws, room)
        await ws.send(json.dumps({"type": "send", "room": room, "body": body + "😀"}))
        error = await recv_json(ws)
    assert (error["code"], error["message"]) == (
        "invalid_message",
        f"body: at most {MAX_BODY_CHARS} characters.",
    )
