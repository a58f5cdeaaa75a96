"""ChatConsumer through the full ASGI stack: frames, errors, limits, rooms and live events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.test import override_settings

from accounts.services import user_set_active
from realtime import groups, selectors, services
from realtime.models import Membership, Message, Room
from realtime.protocol import CloseCode
from tests.realtime.conftest import (
    exchange,
    expect_close,
    group_channels,
    join,
    log_messages,
    open_session_id,
    post_messages,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def realtime_overrides(**values: Any) -> override_settings:
    return override_settings(REALTIME={**settings.REALTIME, **values})


async def expect_error(comm, caplog, code: str, ref: str | None = None) -> dict[str, Any]:
    frame = await comm.receive_json_from()
    assert frame["type"] == "error", frame
    assert frame["code"] == code, frame
    assert frame["ref"] == ref, frame
    assert isinstance(frame["message"], str)
    assert frame["message"]
    logged = [m for m in log_messages(caplog, "realtime.protocol") if "ws error frame" in m]
    assert len(logged) == 1, logged
    assert f"code={code} " in logged[0]
    # Each error frame must bring its own log line, so the next check starts from none.
    caplog.clear()
    return frame


async def assert_alive(comm) -> None:
    reply = await exchange(comm, {"type": "ping", "ref": "alive"})
    assert reply == {"type": "pong", "ref": "alive"}


async def say(comm, room: str, body: str) -> int:
    """Send a message that must be acknowledged; return its id."""
    reply = await exchange(comm, {"type": "send", "room": room, "body": body})
    assert reply["type"] == "ack", reply
    return reply["id"]


async def send_raw(comm, frame: Any) -> None:
    await comm.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def general(make_room, user):
    return make_room("general", owner=user)


# --- Malformed frames --------------------------------------------------------------------------

BAD_FRAMES = [
    pytest.param("{not json", "invalid_json", None, id="invalid-json"),
    pytest.param('{"type": "ping"', "invalid_json", None, id="truncated-json"),
    pytest.param({"type": "shout", "ref": "r1"}, "unknown_type", "r1", id="unknown-type"),
    pytest.param({"room": "general", "ref": "r1"}, "unknown_type", "r1", id="missing-type"),
    pytest.param({"type": 5, "ref": "r1"}, "unknown_type", "r1", id="type-not-string"),
    pytest.param({"type": "PING"}, "unknown_type", None, id="type-wrong-case"),
    pytest.param([{"type": "ping"}], "invalid_message", None, id="json-array"),
    pytest.param('"ping"', "invalid_message", None, id="json-string"),
    pytest.param({"type": "ping", "extra": 1, "ref": "r1"}, "invalid_message", "r1", id="extra"),
    pytest.param({"type": "join", "ref": "r1"}, "invalid_message", "r1", id="join-no-room"),
    pytest.param({"type": "join", "room": 5, "ref": "r1"}, "invalid_message", "r1", id="room-int"),
    pytest.param(
        {"type": "join", "room": "Bad Room!", "ref": "r1"}, "invalid_message", "r1", id="bad-slug"
    ),
    pytest.param(
        {"type": "join", "room": "x" * 51, "ref": "r1"}, "invalid_message", "r1", id="long-slug"
    ),
    pytest.param(
        {"type": "leave", "room": "-general", "ref": "r1"}, "invalid_message", "r1", id="dash-slug"
    ),
    pytest.param(
        {"type": "send", "room": "general", "body": 123, "ref": "r1"},
        "invalid_message",
        "r1",
        id="body-int",
    ),
    pytest.param(
        {"type": "send", "room": "general", "ref": "r1"}, "invalid_message", "r1", id="no-body"
    ),
    pytest.param(
        {"type": "send", "room": "general", "body": "", "ref": "r1"},
        "invalid_message",
        "r1",
        id="empty-body",
    ),
    pytest.param(
        {"type": "send", "room": "general", "body": " \n\t ", "ref": "r1"},
        "invalid_message",
        "r1",
        id="blank-body",
    ),
    pytest.param(
        {"type": "send", "room": "general", "body": "x" * 4001, "ref": "r1"},
        "invalid_message",
        "r1",
        id="body-too-long",
    ),
    pytest.param(
        {"type": "send", "room": "general", "body": "a\x00b", "ref": "r1"},
        "invalid_message",
        "r1",
        id="nul-in-body",
    ),
    # An unusable ref is not echoed: the error cannot be correlated, but it is still sent.
    pytest.param({"type": "ping", "ref": 7}, "invalid_message", None, id="ref-int"),
    pytest.param({"type": "ping", "ref": ""}, "invalid_message", None, id="ref-empty"),
    pytest.param({"type": "ping", "ref": "r" * 65}, "invalid_message", None, id="ref-too-long"),
    pytest.param(
        json.dumps({"type": "send", "room": "general", "body": "x" * (56 * 1024), "ref": "r1"}),
        "too_large",
        None,
        id="frame-too-large",
    ),
]


@pytest.mark.parametrize(("frame", "code", "ref"), BAD_FRAMES)
async def test_bad_frame_gets_an_error_and_the_socket_keeps_working(
    sockets, user, general, realtime_logs, frame, code, ref
):
    comm = await sockets.open(user)
    await send_raw(comm, frame)
    await expect_error(comm, realtime_logs, code, ref)
    await assert_alive(comm)


async def test_binary_frame_is_invalid_frame(sockets, user, realtime_logs):
    comm = await sockets.open(user)
    await comm.send_to(bytes_data=json.dumps({"type": "ping"}).encode())
    await expect_error(comm, realtime_logs, "invalid_frame")
    await assert_alive(comm)


async def test_empty_text_frame_is_invalid_frame(sockets, user, realtime_logs):
    comm = await sockets.open(user)
    # send_to() refuses an empty string, so the ASGI event is built by hand.
    await comm.send_input({"type": "websocket.receive", "text": ""})
    await expect_error(comm, realtime_logs, "invalid_frame")
    await assert_alive(comm)


async def test_body_of_exactly_max_chars_is_accepted(sockets, user, general):
    comm = await sockets.open(user)
    await join(comm, "general")
    reply = await exchange(comm, {"type": "send", "room": "general", "body": "é" * 4000})
    assert reply["type"] == "ack"


async def test_protocol_violations_close_the_socket_4400(sockets, user, realtime_logs):
    with realtime_overrides(MAX_PROTOCOL_ERRORS=3):
        comm = await sockets.open(user)
        for _ in range(2):
            await send_raw(comm, "{not json")
            await expect_error(comm, realtime_logs, "invalid_json")
        await assert_alive(comm)
        await send_raw(comm, {"type": "nope"})
        # Read without expect_error: its log reset would drop the close line logged with it.
        assert (await comm.receive_json_from())["code"] == "unknown_type"
        assert await expect_close(comm) == CloseCode.PROTOCOL_VIOLATION
        # A closing socket ignores whatever the client still sends.
        await comm.send_json_to({"type": "ping"})
        assert await comm.receive_nothing()
    assert any(
        "protocol violation close" in m for m in log_messages(realtime_logs, "realtime.connection")
    )


async def test_room_errors_are_not_protocol_violations(sockets, user, realtime_logs):
    with realtime_overrides(MAX_PROTOCOL_ERRORS=2):
        comm = await sockets.open(user)
        for _ in range(3):
            await send_raw(comm, {"type": "join", "room": "nowhere"})
            await expect_error(comm, realtime_logs, "not_found")
            await send_raw(comm, {"type": "leave", "room": "nowhere"})
            await expect_error(comm, realtime_logs, "not_joined")
        await assert_alive(comm)


# --- Rate limit --------------------------------------------------------------------------------


async def test_flooding_gets_rate_limited_then_closed_4008(sockets, user, realtime_logs):
    # A refill rate this low adds no token during the test: the outcome depends on counts only.
    with realtime_overrides(RATE_BURST=3, RATE_PER_SECOND=0.0001, RATE_STRIKES_BEFORE_CLOSE=3):
        comm = await sockets.open(user)
        for i in range(3):
            assert await exchange(comm, {"type": "ping", "ref": f"p{i}"}) == {
                "type": "pong",
                "ref": f"p{i}",
            }
        for _ in range(2):
            await comm.send_json_to({"type": "ping", "ref": "dropped"})
            # Dropped before parsing, so the ref is not read either.
            await expect_error(comm, realtime_logs, "rate_limited")
        await comm.send_json_to({"type": "ping"})
        assert await expect_close(comm) == CloseCode.RATE_LIMITED
    assert any("rate limit close" in m for m in log_messages(realtime_logs, "realtime.connection"))


async def test_rate_limit_counts_bad_frames_too(sockets, user, realtime_logs):
    with realtime_overrides(RATE_BURST=2, RATE_PER_SECOND=0.0001, RATE_STRIKES_BEFORE_CLOSE=5):
        comm = await sockets.open(user)
        await send_raw(comm, "{not json")
        await expect_error(comm, realtime_logs, "invalid_json")
        await send_raw(comm, "{not json")
        await expect_error(comm, realtime_logs, "invalid_json")
        await send_raw(comm, "{not json")
        await expect_error(comm, realtime_logs, "rate_limited")


# --- Rooms -------------------------------------------------------------------------------------


async def test_join_of_a_missing_room_is_not_found(sockets, user, realtime_logs):
    comm = await sockets.open(user)
    await send_raw(comm, {"type": "join", "room": "nowhere", "ref": "j1"})
    await expect_error(comm, realtime_logs, "not_found", "j1")
    await assert_alive(comm)


async def test_send_to_a_room_not_joined_is_not_joined(sockets, user, general, realtime_logs):
    comm = await sockets.open(user)
    await send_raw(comm, {"type": "send", "room": "general", "body": "hi", "ref": "s1"})
    await expect_error(comm, realtime_logs, "not_joined", "s1")
    assert not await Message.objects.aexists()
    await assert_alive(comm)


async def test_leave_of_a_room_not_joined_is_not_joined(sockets, user, general, realtime_logs):
    comm = await sockets.open(user)
    await send_raw(comm, {"type": "leave", "room": "general", "ref": "l1"})
    await expect_error(comm, realtime_logs, "not_joined", "l1")
    await assert_alive(comm)


async def test_private_room_is_forbidden_to_non_members(
    sockets, user, bob, make_room, realtime_logs
):
    room = await sync_to_async(make_room)("secret", owner=user, is_private=True)
    outsider = await sockets.open(bob)
    await send_raw(outsider, {"type": "join", "room": "secret", "ref": "j1"})
    await expect_error(outsider, realtime_logs, "forbidden", "j1")
    assert group_channels(groups.room_group(room.pk)) == set()

    owner = await sockets.open(user)
    await join(owner, "secret")
    await say(owner, "secret", "psst")
    assert (await owner.receive_json_from())["body"] == "psst"
    # The refused join left no trace in the room's group.
    assert await outsider.receive_nothing()
    await assert_alive(outsider)


async def test_private_room_admits_members(sockets, user, bob, make_room):
    await sync_to_async(make_room)("secret", owner=user, is_private=True, members=(bob,))
    room = await Room.objects.aget(slug="secret")
    comm = await sockets.open(bob)
    reply = await join(comm, "secret", ref="j1")
    assert reply == {
        "type": "joined",
        "room": "secret",
        "epoch": str(room.pk),
        "seq": 0,
        "history": [],
        "recovered": False,
        "has_more": False,
        "presence": [{"id": bob.pk, "username": "bob"}],
        "ref": "j1",
    }


async def test_send_after_a_silent_membership_removal_is_forbidden_and_leaves(
    sockets, user, bob, make_room, realtime_logs
):
    room = await sync_to_async(make_room)("secret", owner=user, is_private=True, members=(bob,))
    owner = await sockets.open(user)
    member = await sockets.open(bob)
    await join(owner, "secret")
    await join(member, "secret")

    # Removed without the post_delete event (as when Redis was down at the time): the check
    # on every send must still refuse.
    def delete_without_signals() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {Membership._meta.db_table} WHERE room_id = %s AND user_id = %s",  # noqa: S608
                [room.pk, bob.pk],
            )

    await sync_to_async(delete_without_signals)()
    await send_raw(member, {"type": "send", "room": "secret", "body": "still here?", "ref": "s1"})
    await expect_error(member, realtime_logs, "forbidden", "s1")
    assert not await Message.objects.filter(body="still here?").aexists()
    assert len(group_channels(groups.room_group(room.pk))) == 1

    # The socket left the room: no more sends, and no more deliveries.
    await send_raw(member, {"type": "send", "room": "secret", "body": "again", "ref": "s2"})
    await expect_error(member, realtime_logs, "not_joined", "s2")
    await say(owner, "secret", "bye")
    assert (await owner.receive_json_from())["body"] == "bye"
    assert await member.receive_nothing()


async def test_too_many_rooms(sockets, user, make_room, realtime_logs):
    for slug in ("a1", "a2", "a3"):
        await sync_to_async(make_room)(slug, owner=user)
    with realtime_overrides(MAX_ROOMS_PER_CONNECTION=2):
        comm = await sockets.open(user)
        await join(comm, "a1")
        await join(comm, "a2")
        await send_raw(comm, {"type": "join", "room": "a3", "ref": "j3"})
        await expect_error(comm, realtime_logs, "too_many_rooms", "j3")
        # Joining a room already joined does not count as another room.
        await join(comm, "a2")
        assert (await exchange(comm, {"type": "leave", "room": "a1"}))["type"] == "left"
        await join(comm, "a3")


# --- Messages ----------------------------------------------------------------------------------


async def test_join_returns_the_latest_history_oldest_first(sockets, user, bob, general):
    messages = await sync_to_async(post_messages)(general, bob, 5)
    with realtime_overrides(HISTORY_LIMIT=3):
        comm = await sockets.open(user)
        reply = await join(comm, "general", ref="j1")
    assert reply["ref"] == "j1"
    assert [m["id"] for m in reply["history"]] == [m.pk for m in messages[2:]]
    assert [m["body"] for m in reply["history"]] == ["m2", "m3", "m4"]
    first = reply["history"][0]
    assert first == {
        "room": "general",
        "id": messages[2].pk,
        "seq": 3,
        "user": {"id": bob.pk, "username": "bob"},
        "body": "m2",
        "created_at": messages[2].created_at.isoformat().replace("+00:00", "Z"),
    }


async def test_history_shows_deleted_authors_as_null(sockets, user, bob, general):
    await sync_to_async(post_messages)(general, bob, 1)
    await sync_to_async(bob.delete)()
    comm = await sockets.open(user)
    reply = await join(comm, "general")
    assert reply["history"][0]["user"] is None
    assert reply["history"][0]["body"] == "m0"


async def test_send_is_acked_stored_and_delivered_to_members(sockets, user, bob, general):
    alice_socket = await sockets.open(user)
    bob_socket = await sockets.open(bob)
    await join(alice_socket, "general")
    await join(bob_socket, "general")

    ack = await exchange(
        alice_socket, {"type": "send", "room": "general", "body": "hello 👋", "ref": "s1"}
    )
    stored = await Message.objects.select_related("author").aget()
    assert ack == {"type": "ack", "id": stored.pk, "seq": 1, "ref": "s1"}
    assert stored.body == "hello 👋"
    assert stored.author == user

    expected = {
        "type": "message",
        "room": "general",
        "id": stored.pk,
        "seq": 1,
        "user": {"id": user.pk, "username": "alice"},
        "body": "hello 👋",
        "created_at": stored.created_at.isoformat().replace("+00:00", "Z"),
    }
    assert await bob_socket.receive_json_from() == expected
    # The sender's other views of the room (this socket included) get it live too.
    assert await alice_socket.receive_json_from() == expected


async def test_message_reaches_other_rooms_never(sockets, user, bob, general, make_room):
    await sync_to_async(make_room)("random", owner=bob)
    alice_socket = await sockets.open(user)
    bob_socket = await sockets.open(bob)
    await join(alice_socket, "general")
    await join(bob_socket, "random")
    await say(alice_socket, "general", "hi")
    assert (await alice_socket.receive_json_from())["type"] == "message"
    assert await bob_socket.receive_nothing()


async def test_leave_returns_left_and_stops_delivery(sockets, user, bob, general):
    alice_socket = await sockets.open(user)
    bob_socket = await sockets.open(bob)
    await join(alice_socket, "general")
    await join(bob_socket, "general")

    left = await exchange(bob_socket, {"type": "leave", "room": "general", "ref": "l1"})
    assert left == {"type": "left", "room": "general", "ref": "l1"}
    assert len(group_channels(groups.room_group(general.pk))) == 1

    await say(alice_socket, "general", "hi")
    # Alice's own copy proves the broadcast happened; Bob's socket is out of the group.
    assert (await alice_socket.receive_json_from())["type"] == "message"
    assert await bob_socket.receive_nothing()


async def test_live_copy_of_a_message_already_in_history_is_dropped(sockets, user, general):
    old = (await sync_to_async(post_messages)(general, user, 1))[0]
    comm = await sockets.open(user)
    reply = await join(comm, "general")
    assert [m["id"] for m in reply["history"]] == [old.pk]

    # The broadcast of a message the join already returned (a send racing the join).
    await groups.broadcast_message(
        general.pk, await sync_to_async(selectors.message_payload)(old, room_slug="general")
    )
    assert await comm.receive_nothing()

    newer = await sync_to_async(services.message_post)(
        author=user, session_id=await open_session_id(user), slug="general", body="new"
    )
    await groups.broadcast_message(newer.room_id, newer.payload)
    assert (await comm.receive_json_from())["id"] == newer.payload["id"]


async def test_ping_gets_pong(sockets, user):
    comm = await sockets.open(user)
    assert await exchange(comm, {"type": "ping", "ref": "abc"}) == {"type": "pong", "ref": "abc"}
    assert await exchange(comm, {"type": "ping"}) == {"type": "pong"}


# --- Changes made elsewhere reach live sockets -------------------------------------------------


async def test_deleting_a_room_makes_joined_sockets_leave(
    sockets, user, bob, make_user, make_room, general
):
    carol = await sync_to_async(make_user)("carol")
    await sync_to_async(make_room)("other", owner=carol)
    owner = await sockets.open(user)
    visitor = await sockets.open(bob)
    elsewhere = await sockets.open(carol)
    await join(owner, "general")
    await join(visitor, "general")
    await join(elsewhere, "other")

    general_group = groups.room_group(general.pk)
    assert len(group_channels(general_group)) == 2
    await sync_to_async(general.delete)()

    expected = {"type": "left", "room": "general", "reason": "room_deleted"}
    assert await owner.receive_json_from() == expected
    assert await visitor.receive_json_from() == expected
    assert await elsewhere.receive_nothing()
    assert group_channels(general_group) == set()
    for comm in (owner, visitor):
        # One `left` each, although the owner's membership was revoked as well.
        assert await comm.receive_nothing()
        await send_raw(comm, {"type": "send", "room": "general", "body": "x", "ref": "s"})
        frame = await comm.receive_json_from()
        assert (frame["type"], frame["code"]) == ("error", "not_joined")


async def test_removing_a_private_membership_makes_the_member_leave(sockets, user, bob, make_room):
    room = await sync_to_async(make_room)("secret", owner=user, is_private=True, members=(bob,))
    owner = await sockets.open(user)
    member = await sockets.open(bob)
    await join(owner, "secret")
    await join(member, "secret")

    assert await sync_to_async(services.membership_remove)(room=room, user=bob)

    assert await member.receive_json_from() == {
        "type": "left",
        "room": "secret",
        "reason": "membership_revoked",
    }
    assert len(group_channels(groups.room_group(room.pk))) == 1
    await say(owner, "secret", "bye")
    assert (await owner.receive_json_from())["body"] == "bye"
    assert await member.receive_nothing()
    await send_raw(member, {"type": "join", "room": "secret"})
    frame = await member.receive_json_from()
    assert (frame["type"], frame["code"]) == ("error", "forbidden")


async def test_leaving_a_public_room_membership_keeps_the_socket_in(sockets, user, bob, general):
    await sync_to_async(services.membership_add)(room=general, user=bob)
    comm = await sockets.open(bob)
    await join(comm, "general")
    assert await sync_to_async(services.membership_remove)(room=general, user=bob)
    # Anyone signed in may read a public room, so nothing is revoked.
    assert await comm.receive_nothing()
    await say(comm, "general", "hi")


async def test_deactivating_a_user_closes_their_sockets_4403(sockets, user, bob, realtime_logs):
    first = await sockets.open(bob)
    second = await sockets.open(bob)
    bystander = await sockets.open(user)

    assert await sync_to_async(user_set_active)(users=[bob], active=False) == 1

    assert await expect_close(first) == CloseCode.FORBIDDEN
    assert await expect_close(second) == CloseCode.FORBIDDEN
    await assert_alive(bystander)
    assert any(
        "session ended" in m and "reason=account_disabled" in m
        for m in log_messages(realtime_logs, "realtime.connection")
    )
