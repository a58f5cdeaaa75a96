"""Delivery in-process: per-room seq, resume with `since`, exactly-once sends, in-order
delivery over gaps and duplicates, presence and typing."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import override_settings

from realtime import groups, selectors, services
from realtime.models import Message, Room
from tests.realtime.conftest import exchange, join, post_messages

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def general(make_room, user):
    return make_room("general", owner=user)


def history_limit(limit: int) -> override_settings:
    return override_settings(REALTIME={**settings.REALTIME, "HISTORY_LIMIT": limit})


async def say(comm, body: str, client_id: str | None = None, room: str = "general") -> dict:
    frame = {"type": "send", "room": room, "body": body}
    if client_id is not None:
        frame["client_id"] = client_id
    reply = await exchange(comm, frame)
    assert reply["type"] == "ack", reply
    return reply


async def next_message(comm) -> dict:
    frame = await comm.receive_json_from()
    assert frame["type"] == "message", frame
    return frame


# --- Sequence numbers ------------------------------------------------------------------------


async def test_messages_of_a_room_are_numbered_one_two_three(sockets, user, general, make_room):
    await sync_to_async(make_room)("other", owner=user)
    comm = await sockets.open(user)
    await join(comm, "general")
    await join(comm, "other")
    acks = []
    for body in ("a", "b", "c"):
        acks.append(await say(comm, body))
        await next_message(comm)
    other = await say(comm, "elsewhere", room="other")
    assert [ack["seq"] for ack in acks] == [1, 2, 3]
    assert other["seq"] == 1
    assert await Room.objects.filter(slug="general").values_list("last_seq", flat=True).aget() == 3


# --- Resuming ----------------------------------------------------------------------------------


async def test_join_since_returns_exactly_what_was_missed(sockets, user, bob, general):
    await sync_to_async(post_messages)(general, bob, 5)
    comm = await sockets.open(user)
    reply = await exchange(
        comm, {"type": "join", "room": "general", "since": 2, "epoch": str(general.pk)}
    )
    assert reply["recovered"] is True
    assert [m["seq"] for m in reply["history"]] == [3, 4, 5]
    assert reply["seq"] == 5


async def test_join_since_the_latest_recovers_nothing_missing(sockets, user, bob, general):
    await sync_to_async(post_messages)(general, bob, 3)
    comm = await sockets.open(user)
    reply = await exchange(comm, {"type": "join", "room": "general", "since": 3})
    assert (reply["recovered"], reply["history"], reply["seq"]) == (True, [], 3)


@pytest.mark.parametrize(
    ("since", "epoch"),
    [
        pytest.param(0, None, id="more-than-a-page-missed"),
        pytest.param(99, None, id="since-beyond-the-latest"),
        pytest.param(1, "another-room", id="another-epoch"),
        pytest.param(None, None, id="no-since"),
    ],
)
async def test_join_says_when_it_cannot_prove_nothing_is_missing(
    sockets, user, bob, general, since, epoch
):
    await sync_to_async(post_messages)(general, bob, 6)
    comm = await sockets.open(user)
    frame = {"type": "join", "room": "general"}
    if since is not None:
        frame["since"] = since
    if epoch is not None:
        frame["epoch"] = epoch
    with history_limit(4):
        reply = await exchange(comm, frame)
    assert reply["recovered"] is False
    # The newest page, and the flag to page back for the rest.
    assert [m["seq"] for m in reply["history"]] == [3, 4, 5, 6]
    assert reply["has_more"] is True


async def test_a_resumed_socket_gets_the_live_feed_without_a_repeat(sockets, user, bob, general):
    await sync_to_async(post_messages)(general, bob, 2)
    listener = await sockets.open(user)
    reply = await exchange(listener, {"type": "join", "room": "general", "since": 1})
    assert [m["seq"] for m in reply["history"]] == [2]
    # A late broadcast of a message the reply already carried is not sent again.
    old = await sync_to_async(lambda: Message.objects.select_related("author").get(seq=2))()
    await groups.broadcast_message(
        general.pk, await sync_to_async(selectors.message_payload)(old, room_slug="general")
    )
    assert await listener.receive_nothing()
    speaker = await sockets.open(bob)
    await join(speaker, "general")
    await say(speaker, "live")
    assert (await next_message(listener))["seq"] == 3


# --- In-order delivery ---------------------------------------------------------------------------


async def test_a_message_past_a_hole_comes_after_the_missing_ones(sockets, user, bob, general):
    listener = await sockets.open(user)
    await join(listener, "general")
    stored = await sync_to_async(post_messages)(general, bob, 3)
    # Only the third is broadcast, as if the first two were lost between processes.
    payload = await sync_to_async(selectors.message_payload)(stored[2], room_slug="general")
    await groups.broadcast_message(general.pk, payload)
    assert [(await next_message(listener))["seq"] for _ in range(3)] == [1, 2, 3]
    # The late copies of the first two change nothing.
    for message in stored[:2]:
        late = await sync_to_async(selectors.message_payload)(message, room_slug="general")
        await groups.broadcast_message(general.pk, late)
    assert await listener.receive_nothing()


# --- Exactly-once sends ---------------------------------------------------------------------


async def test_a_retried_send_is_acked_again_and_stored_once(sockets, user, bob, general):
    sender = await sockets.open(user)
    listener = await sockets.open(bob)
    await join(sender, "general")
    await join(listener, "general")
    first = await say(sender, "once", client_id="c-1")
    await next_message(sender)
    assert (await next_message(listener))["seq"] == first["seq"]
    retried = await say(sender, "once", client_id="c-1")
    assert (retried["id"], retried["seq"]) == (first["id"], first["seq"])
    assert await Message.objects.filter(body="once").acount() == 1
    assert await listener.receive_nothing()
    assert await sender.receive_nothing()


async def test_a_client_id_cannot_name_two_messages(sockets, user, general, make_room):
    await sync_to_async(make_room)("other", owner=user)
    comm = await sockets.open(user)
    await join(comm, "general")
    await join(comm, "other")
    await say(comm, "first", client_id="c-1")
    await next_message(comm)
    for frame in (
        {"type": "send", "room": "general", "body": "another", "client_id": "c-1"},
        {"type": "send", "room": "other", "body": "first", "client_id": "c-1"},
    ):
        reply = await exchange(comm, frame)
        assert (reply["type"], reply["code"]) == ("error", "invalid_message")
        assert "client_id" in reply["message"]
    assert await Message.objects.acount() == 1


async def test_client_ids_are_per_author(sockets, user, bob, general):
    alice_socket, bob_socket = await sockets.open(user), await sockets.open(bob)
    await join(alice_socket, "general")
    await join(bob_socket, "general")
    assert (await say(alice_socket, "hi", client_id="same"))["seq"] == 1
    assert (await say(bob_socket, "hi", client_id="same"))["seq"] == 2


@pytest.mark.parametrize("client_id", ["", "a" * 65, "has space", "ünïcode", 5])
async def test_a_malformed_client_id_is_invalid_message(sockets, user, general, client_id):
    comm = await sockets.open(user)
    await join(comm, "general")
    reply = await exchange(
        comm, {"type": "send", "room": "general", "body": "x", "client_id": client_id}
    )
    assert (reply["type"], reply["code"]) == ("error", "invalid_message")


# --- Presence and typing ---------------------------------------------------------------------


async def test_presence_counts_users_not_devices(noticing_sockets, user, bob, general):
    phone, laptop = await noticing_sockets.open(bob), await noticing_sockets.open(bob)
    watcher = await noticing_sockets.open(user)
    reply = await join(watcher, "general")
    assert reply["presence"] == [{"id": user.pk, "username": "alice"}]

    await join(phone, "general")
    assert await watcher.receive_json_from() == {
        "type": "presence",
        "room": "general",
        "user": {"id": bob.pk, "username": "bob"},
        "event": "join",
    }
    reply = await join(laptop, "general")
    assert [u["username"] for u in reply["presence"]] == ["alice", "bob"]
    # A second device of a present user is no news.
    assert await watcher.receive_nothing()

    await exchange(phone, {"type": "leave", "room": "general"})
    assert await watcher.receive_nothing()
    await laptop.disconnect()
    assert (await watcher.receive_json_from())["event"] == "leave"
    # A user hears nothing about themselves.
    assert await phone.receive_nothing()


async def test_typing_reaches_the_others_throttled_and_unstored(
    noticing_sockets, user, bob, general
):
    typist, reader = await noticing_sockets.open(user), await noticing_sockets.open(bob)
    await join(reader, "general")
    await join(typist, "general")
    assert (await reader.receive_json_from())["type"] == "presence"

    for _ in range(3):
        await typist.send_json_to({"type": "typing", "room": "general"})
    assert await reader.receive_json_from() == {
        "type": "typing",
        "room": "general",
        "user": {"id": user.pk, "username": "alice"},
    }
    # The next two fell inside the throttle window; the typist hears nothing of it at all.
    assert await reader.receive_nothing()
    assert await typist.receive_nothing()
    assert await Message.objects.acount() == 0


async def test_typing_in_a_room_not_joined_is_not_joined(sockets, user, general):
    comm = await sockets.open(user)
    reply = await exchange(comm, {"type": "typing", "room": "general", "ref": "t"})
    assert (reply["type"], reply["code"], reply["ref"]) == ("error", "not_joined", "t")


# --- Redaction ---------------------------------------------------------------------------------


async def test_a_redacted_message_keeps_its_seq(sockets, user, bob, general):
    stored = await sync_to_async(post_messages)(general, bob, 3)
    await sync_to_async(services.message_redact)(messages=Message.objects.filter(pk=stored[1].pk))
    comm = await sockets.open(user)
    history = (await join(comm, "general"))["history"]
    assert [m["seq"] for m in history] == [1, 2, 3]
    assert (history[1]["body"], history[1]["redacted"]) == ("", True)
    assert "redacted" not in history[0]
