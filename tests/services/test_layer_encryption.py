"""Channel-layer payload encryption (CHANNEL_LAYER_ENCRYPTION_KEYS), seen from Redis.

A raw redis-py client subscribed to every channel (PSUBSCRIBE *) of the same redis-server
records what crosses it. With a key, two daphne processes chat and no message body appears
in what was published, while each payload decrypts with the key to the message. Without a key
the same tap finds the body in plaintext, so the first test cannot pass because the tap sees
nothing. A process with another key delivers nothing of the others' and says so in its log,
without crashing or closing its sockets; keys rotate without a lost message.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels_redis.serializers import registry
from cryptography.fernet import InvalidToken
from redis import asyncio as aioredis

from tests.services.support.api import Api
from tests.services.support.common import HOST
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import (
    drain,
    join,
    message_by_id,
    post,
    request,
    ws_connect,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

# Published room traffic is on channels named by the layer's prefix and the room's group.
ROOM_CHANNELS = "chat__group__room."
# How long the tap may lag behind a socket that already received a message.
TAP_TIMEOUT = 5.0
# How long a socket of the process with the wrong key is watched for a delivery.
SILENCE_SECONDS = 3.0

Published = list[tuple[str, bytes]]


def new_key() -> str:
    return secrets.token_urlsafe(32)


@contextlib.asynccontextmanager
async def wire_tap(redis_server: RedisServer) -> AsyncIterator[Published]:
    """Everything published on `redis_server` while inside: (channel, payload) pairs."""
    client = aioredis.Redis(host=HOST, port=redis_server.port, socket_connect_timeout=2)
    pubsub = client.pubsub()
    await pubsub.psubscribe("*")
    published: Published = []

    async def read() -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None:
                published.append((message["channel"].decode(), message["data"]))

    reader = asyncio.create_task(read())
    try:
        yield published
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await pubsub.aclose()
        await client.aclose()


async def room_payloads(published: Published, count: int) -> list[bytes]:
    """The room payloads the tap saw, once it saw at least `count` (bounded wait)."""
    async with asyncio.timeout(TAP_TIMEOUT):
        while True:
            payloads = [data for channel, data in published if channel.startswith(ROOM_CHANNELS)]
            if len(payloads) >= count:
                return payloads
            await asyncio.sleep(0.05)


async def chat_both_ways(
    redis_server: RedisServer, first: Server, second: Server
) -> tuple[Published, list[bytes], str, str]:
    """A message from a socket on `first` to one on `second` in a new room, and a reply;
    what the tap saw meanwhile, the room payloads among it, and the two bodies."""
    api = Api(first)
    alice, bob = api.account("alice"), api.account("bob")
    room = api.room(alice)
    there, back = f"there-{uuid.uuid4().hex}", f"back-{uuid.uuid4().hex}"

    async with (
        wire_tap(redis_server) as published,
        ws_connect(first, token=alice.access) as alice_ws,
        ws_connect(second, token=bob.access) as bob_ws,
    ):
        await join(alice_ws, room)
        await join(bob_ws, room)
        sent = await post(alice_ws, room, there)
        assert (await message_by_id(bob_ws, sent))["body"] == there
        replied = await post(bob_ws, room, back)
        assert (await message_by_id(alice_ws, replied))["body"] == back
        # Two presence notices (each join) and the two messages.
        payloads = await room_payloads(published, 4)
    return published, payloads, there, back


def decrypt(payload: bytes, keys: list[str]) -> dict[str, Any]:
    """channels-redis's own serializer, as the layer configures it with `keys`."""
    return registry.get_serializer("msgpack", symmetric_encryption_keys=keys).deserialize(payload)


async def test_with_a_key_processes_chat_and_no_body_crosses_redis_in_plaintext(
    start_redis: Callable[..., RedisServer], start_server: Callable[..., Server]
) -> None:
    redis_server = start_redis()
    key = new_key()
    server_a = start_server(redis_server.url, name="enc-a", CHANNEL_LAYER_ENCRYPTION_KEYS=key)
    server_b = start_server(redis_server.url, name="enc-b", CHANNEL_LAYER_ENCRYPTION_KEYS=key)
    published, payloads, there, back = await chat_both_ways(redis_server, server_a, server_b)

    assert not any(body.encode() in data for _, data in published for body in (there, back))
    # What crossed was the messages, encrypted with the key: channels-redis's Fernet tokens.
    texts = [decrypt(payload, [key]).get("text", "") for payload in payloads]
    assert any(there in text for text in texts), texts
    assert any(back in text for text in texts), texts
    for payload in payloads:
        with pytest.raises(InvalidToken):
            decrypt(payload, [new_key()])


async def test_without_a_key_the_tap_sees_the_body_in_plaintext(
    start_redis: Callable[..., RedisServer], start_server: Callable[..., Server]
) -> None:
    redis_server = start_redis()
    server = start_server(redis_server.url, name="plain-layer")
    api = Api(server)
    alice = api.account("alice")
    room = api.room(alice)
    body = f"plain-{uuid.uuid4().hex}"

    async with wire_tap(redis_server) as published, ws_connect(server, token=alice.access) as ws:
        await join(ws, room)
        await post(ws, room, body)
        # The presence notice of the join, then the message.
        payloads = await room_payloads(published, 2)

    assert any(body.encode() in payload for payload in payloads), payloads


async def test_a_process_with_another_key_delivers_nothing_and_logs_it(
    start_redis: Callable[..., RedisServer], start_server: Callable[..., Server]
) -> None:
    redis_server = start_redis()
    server = start_server(redis_server.url, name="key-a", CHANNEL_LAYER_ENCRYPTION_KEYS=new_key())
    stranger = start_server(
        redis_server.url, name="key-x", CHANNEL_LAYER_ENCRYPTION_KEYS=new_key()
    )
    api = Api(server)
    alice, xavier = api.account("alice"), api.account("xavier")
    room = api.room(alice)

    async with (
        ws_connect(server, token=alice.access) as alice_ws,
        ws_connect(stranger, token=xavier.access) as xavier_ws,
    ):
        await join(alice_ws, room)
        await join(xavier_ws, room)
        sent = await post(alice_ws, room, "unreadable elsewhere")
        # The process with the key delivers it...
        assert (await message_by_id(alice_ws, sent))["body"] == "unreadable elsewhere"
        # ...the other one does not.
        frames = await drain(xavier_ws, SILENCE_SECONDS)
        assert not [f for f in frames if f.get("type") == "message"], frames
        # The socket lives on, served as before.
        assert (await request(xavier_ws, {"type": "ping"}))["type"] == "pong"

    assert stranger.alive(), stranger.output()
    records = [r["message"] for r in stranger.log_records()]
    dropped = [m for m in records if "channel layer message dropped: cannot decode" in m]
    assert dropped, records
    assert all("error=InvalidToken" in m for m in dropped), dropped
    # Not mistaken for a lost subscription: no reconnect storm, no socket closed.
    assert not any("subscription lost" in m for m in records), records
    assert not any("restoring" in m for m in records), records


async def test_keys_rotate_without_a_lost_message(
    start_redis: Callable[..., RedisServer], start_server: Callable[..., Server]
) -> None:
    """Mid-rotation, one process still encrypts with the old key and the other already with
    the new one; both decrypt both, so they keep hearing each other."""
    redis_server = start_redis()
    old, new = new_key(), new_key()
    behind = start_server(
        redis_server.url, name="rot-old", CHANNEL_LAYER_ENCRYPTION_KEYS=f"{old},{new}"
    )
    ahead = start_server(
        redis_server.url, name="rot-new", CHANNEL_LAYER_ENCRYPTION_KEYS=f"{new},{old}"
    )
    _, payloads, from_behind, from_ahead = await chat_both_ways(redis_server, behind, ahead)

    # The first key of each process is the one it encrypts with.
    by_key = {}
    for payload in payloads:
        for name, key in (("old", old), ("new", new)):
            with contextlib.suppress(InvalidToken):
                by_key.setdefault(name, []).append(decrypt(payload, [key]).get("text", ""))
    assert any(from_behind in text for text in by_key.get("old", [])), by_key
    assert any(from_ahead in text for text in by_key.get("new", [])), by_key
    assert not any(from_ahead in text for text in by_key.get("old", [])), by_key
