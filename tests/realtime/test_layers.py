"""realtime.layers in one process: what arrives from Redis is decoded (and decrypted) once by
the layer's serializer and handed to every member, and what cannot be decoded is dropped and
logged without disturbing the subscription.

Nothing here connects: messages are fed to the shard connection as redis-py hands them over.
Across real Redis servers and daphne processes: tests/services/test_layer_encryption.py.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import pytest

from realtime.layers import ChatChannelLayer, ChatLoopLayer, Inbox

pytestmark = pytest.mark.asyncio

HOSTS = [{"address": "redis://127.0.0.1:9/0"}]
GROUP = "room.1"


def layer_with(keys: list[str] | None) -> ChatChannelLayer:
    return ChatChannelLayer(hosts=HOSTS, prefix="chat", symmetric_encryption_keys=keys)


async def joined(layer: ChatChannelLayer, count: int) -> tuple[ChatLoopLayer, list[str]]:
    loop_layer = layer._get_layer()
    channels = [await loop_layer.new_channel() for _ in range(count)]
    for channel in channels:
        # Subscribing would connect; only the membership matters here.
        loop_layer.groups.setdefault(loop_layer._get_group_channel_name(GROUP), set()).add(channel)
    return loop_layer, channels


def arrival(loop_layer: ChatLoopLayer, data: bytes) -> dict[str, Any]:
    return {"channel": loop_layer._get_group_channel_name(GROUP).encode(), "data": data}


async def test_an_encrypted_message_is_decrypted_once_for_every_member(monkeypatch):
    key = secrets.token_urlsafe(32)
    layer = layer_with([key])
    loop_layer, channels = await joined(layer, 3)
    heard: list[dict[str, Any]] = []
    # One socket takes messages straight away; the others get them through their queues.
    loop_layer.listen(channels[0], lambda event: heard.append(event) or True)
    decoded = []
    real = layer.deserialize
    monkeypatch.setattr(layer, "deserialize", lambda data: decoded.append(data) or real(data))
    event = {"type": "chat.message", "room_id": 1, "seq": 1, "text": "hello"}
    payload = layer.serialize(event)
    assert b"hello" not in payload

    loop_layer._shards[0]._receive_message(arrival(loop_layer, payload))

    assert decoded == [payload]
    assert heard == [event]
    assert [await loop_layer.receive(channel) for channel in channels[1:]] == [event, event]


async def test_a_message_under_another_key_is_dropped_and_logged_at_most_every_interval(
    caplog,
):
    layer = layer_with([secrets.token_urlsafe(32)])
    loop_layer, channels = await joined(layer, 2)
    heard: list[dict[str, Any]] = []
    loop_layer.listen(channels[0], lambda event: heard.append(event) or True)
    foreign = layer_with([secrets.token_urlsafe(32)]).serialize({"type": "chat.message"})
    caplog.set_level(logging.WARNING, logger="realtime.connection")

    for _ in range(3):
        loop_layer._shards[0]._receive_message(arrival(loop_layer, foreign))

    assert heard == []
    assert loop_layer.channels[channels[1]].empty()
    (record,) = caplog.records
    assert record.getMessage() == (
        f"channel layer message dropped: cannot decode channel=chat__group__{GROUP} "
        "error=InvalidToken dropped=1"
    )
    # The two after it are counted for the next line.
    assert loop_layer.undecodable == 2


@pytest.mark.parametrize("data", [b"\x00not msgpack at all", b"\x2a"])
async def test_anything_else_published_on_a_group_is_dropped(caplog, data):
    layer = layer_with(None)
    loop_layer, channels = await joined(layer, 1)
    caplog.set_level(logging.WARNING, logger="realtime.connection")

    loop_layer._shards[0]._receive_message(arrival(loop_layer, data))

    assert loop_layer.channels[channels[0]].empty()
    assert "channel layer message dropped: cannot decode" in caplog.text


async def test_without_keys_payloads_are_plain_msgpack():
    layer = layer_with(None)
    loop_layer, channels = await joined(layer, 1)
    payload = layer.serialize({"type": "chat.message", "text": "hello"})
    assert b"hello" in payload

    loop_layer._shards[0]._receive_message(arrival(loop_layer, payload))

    assert await loop_layer.receive(channels[0]) == {"type": "chat.message", "text": "hello"}


# --- Inbox: a channel's queue ----------------------------------------------------------------


async def test_an_inbox_hands_messages_over_in_order():
    inbox = Inbox()
    for n in range(3):
        inbox.put_nowait({"n": n})

    assert inbox.qsize() == 3
    assert [(await inbox.get())["n"] for _ in range(3)] == [0, 1, 2]
    assert inbox.empty()


async def test_a_reader_waiting_on_an_empty_inbox_wakes_for_the_next_message():
    inbox = Inbox()
    reader = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not reader.done()

    inbox.put_nowait({"n": 1})

    assert await asyncio.wait_for(reader, 1) == {"n": 1}


async def test_a_cancelled_read_leaves_the_inbox_usable():
    inbox = Inbox()
    reader = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader

    inbox.put_nowait({"n": 2})

    assert inbox.waiter is None
    assert await asyncio.wait_for(inbox.get(), 1) == {"n": 2}


async def test_the_layer_drops_what_passes_a_full_inbox():
    layer = layer_with(None)
    loop_layer = layer._get_layer()
    loop_layer.capacity = 2
    channel = await loop_layer.new_channel()
    for n in range(3):
        loop_layer.enqueue(channel, {"n": n})

    assert loop_layer.channels[channel].qsize() == 2
    assert [(await loop_layer.receive(channel))["n"] for _ in range(2)] == [0, 1]
