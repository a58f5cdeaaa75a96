"""The channel layer: channels-redis's pub/sub layer, with a bounded pool, reconnects that the
sockets hear about, and delivery straight to the sockets that want it (docs/benchmarks.md).

Why the pub/sub layer. channels-redis's core RedisChannelLayer costs three Redis round trips
per group_send (expire old members, read every member, a Lua script writing one entry per
receiving process) and drains each process's inbox through one receive loop behind a lock.
The pub/sub layer publishes once per group_send; each process subscribes once to each group
its sockets are in and hands each message to them in memory. Pub/sub is at-most-once: what is
published while a process is disconnected from Redis is lost. Nothing depends on it:
messages carry their room's seq, every socket fills holes from the database
(realtime.feeds), and after a reconnect every socket catches up (`notify_reconnect`).

What this adds to channels-redis's layer (4.3):

* Decoding once. A published message is decoded (and decrypted, with
  `symmetric_encryption_keys`) once per process by the layer's serializer, however many
  sockets receive it; queues hold decoded messages. One that cannot be decoded (encrypted
  with a key this process lacks, or not published by a layer) is dropped and logged: the
  subscription and the sockets carry on.
* Direct delivery. A consumer may `listen(channel, callback)`: a group message for that
  channel is handed to the callback synchronously; the callback takes what it can handle
  at once (a chat message in order) and returns False for the rest, which goes through the
  channel's queue as usual.
* Bounded queues. A channel's queue holds `capacity` messages; past that a message is
  dropped and logged, as the core layer does (a hole the receiving socket fills by seq).
* A bounded, blocking pool with timeouts for the publishing connection (redis-py 8 caps an
  asyncio pool at 100 connections and raises past that), for Sentinel masters too.
* `notify_outage` callbacks, run when the subscription connection has been down for
  `outage_grace` seconds, and `notify_reconnect` callbacks, run when it comes back.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)
from channels_redis.utils import _wrap_close
from redis import asyncio as aioredis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from realtime.metrics import LAYER_ERRORS, observe_fanout, timed_layer_call

logger = logging.getLogger("realtime.connection")

# A group message handed to a listener; True if it took it, False to queue it instead.
Listener = Callable[[dict[str, Any]], bool]

# How long the subscription loop waits for a message before looking again (channels-redis's).
RECEIVE_POLL_SECONDS = 0.1
# Between attempts while Redis is down: quick enough to notice it is back within a second.
RECONNECT_PAUSE_SECONDS = 0.5
# Messages that cannot be decoded are logged at most this often (with how many were dropped):
# a process with the wrong key sees every message of its rooms, and must not flood its log.
UNDECODABLE_LOG_SECONDS = 10.0


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """A pool of connections to the master Sentinel names, waiting for a free connection
    when all are taken (BlockingConnectionPool) instead of raising."""


class ChatPubSub(PubSub):
    """redis-py's PubSub, telling its owner when it reconnected.

    redis-py reconnects a subscription connection by itself (and subscribes every channel
    again) when a read fails and Redis answers at once, as after a quick restart: no error
    reaches the receive loop, yet whatever was published in between was lost.
    """

    def __init__(self, *args: Any, on_reconnect: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_reconnect = on_reconnect

    async def on_connect(self, connection: Any) -> None:
        # Called by the connection on every connect after the first (registered after it).
        await super().on_connect(connection)
        self._on_reconnect()


class ChatShardConnection(RedisSingleShardConnection):
    # channels-redis's, set by _ensure_redis.
    _redis: aioredis.Redis | None
    _pubsub: PubSub | None

    def __init__(self, host: dict[str, Any], channel_layer: ChatLoopLayer) -> None:
        super().__init__(host, channel_layer)
        self.failing_since: float | None = None
        self.outage_told = False

    def _ensure_redis(self) -> None:
        if self._redis is None:
            layer: ChatLoopLayer = self.channel_layer
            self._redis = aioredis.Redis(connection_pool=layer.create_pool(self.host))
            self._pubsub = ChatPubSub(self._redis.connection_pool, on_reconnect=self._reconnected)

    async def _do_receiving(self) -> None:
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=RECEIVE_POLL_SECONDS
                    )
                    if self.failing_since is not None:
                        # get_message reconnected and resubscribed every channel by itself
                        # (redis-py's PubSub.on_connect); what was published meanwhile is lost.
                        self._recovered()
                    self._receive_message(message)
                else:
                    await asyncio.sleep(RECEIVE_POLL_SECONDS)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                now = time.monotonic()
                if self.failing_since is None:
                    LAYER_ERRORS.labels(operation="receive").inc()
                    self.failing_since = now
                    self.outage_told = False
                    logger.warning("channel layer subscription lost error=%s", type(exc).__name__)
                layer: ChatLoopLayer = self.channel_layer
                if not self.outage_told and now - self.failing_since >= layer.outage_grace:
                    # Past a blip (a restart takes well under the grace): the sockets cannot
                    # hear their rooms, so they are told to come back later (4013).
                    self.outage_told = True
                    for callback in list(layer.outage_callbacks):
                        callback()
                await asyncio.sleep(RECONNECT_PAUSE_SECONDS)

    def _reconnected(self) -> None:
        """The subscription connection reconnected, whether or not a failure surfaced."""
        if self.failing_since is None:
            LAYER_ERRORS.labels(operation="receive").inc()
            logger.warning("channel layer subscription lost and reconnected at once")
            self._run_reconnect_callbacks()
            return
        self._recovered()

    def _recovered(self) -> None:
        down = time.monotonic() - (self.failing_since or time.monotonic())
        self.failing_since = None
        logger.warning("channel layer subscription back after %.1fs", down)
        self._run_reconnect_callbacks()

    def _run_reconnect_callbacks(self) -> None:
        layer: ChatLoopLayer = self.channel_layer
        for callback in list(layer.reconnect_callbacks):
            callback()

    def _receive_message(self, message: dict[str, Any] | None) -> None:
        if message is None:
            return
        layer: ChatLoopLayer = self.channel_layer
        name, data = message["channel"], message["data"]
        if isinstance(name, bytes):
            name = name.decode()
        direct = name in layer.channels
        members = [name] if direct else list(layer.groups.get(name, ()))
        if not members:
            return
        # Once per process, however many sockets it has in the group.
        decoded = layer.decode(name, data)
        if decoded is None:
            return
        observe_fanout(decoded)
        for channel in members:
            listener = None if direct else layer.listeners.get(channel)
            if listener is not None and listener(decoded):
                continue
            layer.enqueue(channel, decoded)


class Inbox:
    """A channel's queue of decoded messages, for one reader (its consumer).

    What asyncio.Queue does here, in a tenth of the memory: a Queue is four deques and an
    Event (about 3 KiB), kept by every idle socket, while most of a socket's traffic never
    waits in its queue at all (direct delivery). Messages are held only while there are some;
    an idle socket keeps one waiting future.
    """

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: collections.deque[dict[str, Any]] | None = None
        self.waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self.items) if self.items else 0

    def empty(self) -> bool:
        return not self.items

    def put_nowait(self, message: dict[str, Any]) -> None:
        if self.items is None:
            self.items = collections.deque()
        self.items.append(message)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def get(self) -> dict[str, Any]:
        while not self.items:
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self.waiter = None
        message = self.items.popleft()
        if not self.items:
            self.items = None
        return message


class ChatLoopLayer(RedisPubSubLoopLayer):
    # channels-redis's, replaced by ChatShardConnections in __init__.
    _shards: list[ChatShardConnection]

    def __init__(
        self,
        *args: Any,
        capacity: int = 1000,
        pool_max_connections: int = 100,
        pool_timeout: float = 5,
        socket_connect_timeout: float = 2,
        socket_timeout: float = 5,
        outage_grace: float = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.capacity = capacity
        self.pool_options: dict[str, Any] = {
            "max_connections": pool_max_connections,
            "timeout": pool_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            "socket_timeout": socket_timeout,
            # One immediate retry replaces a connection Redis closed while it sat in the pool.
            "retry": Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        }
        self.listeners: dict[str, Listener] = {}
        self.reconnect_callbacks: set[Callable[[], None]] = set()
        self.outage_grace = outage_grace
        self.outage_callbacks: set[Callable[[], None]] = set()
        self.undecodable = 0
        self.undecodable_logged_at = -math.inf
        self._shards = [ChatShardConnection(shard.host, self) for shard in self._shards]

    def create_pool(self, host: dict[str, Any]) -> Any:
        """A blocking pool (`pool_options`) for one `hosts` entry: a redis:// or rediss://
        URL, a master found through Sentinel, or host and port."""
        host = dict(host)
        address = host.pop("address", None)
        if address is not None:
            return BlockingConnectionPool.from_url(address, **host, **self.pool_options)
        master = host.pop("master_name", None)
        if master is None:
            return BlockingConnectionPool(**host, **self.pool_options)
        sentinel_kwargs = {
            # channels-redis gives the sentinels no timeouts: a hung one would hang the layer.
            "socket_connect_timeout": self.pool_options["socket_connect_timeout"],
            "socket_timeout": self.pool_options["socket_timeout"],
            **(host.pop("sentinel_kwargs", None) or {}),
        }
        sentinel = Sentinel(host.pop("sentinels"), sentinel_kwargs=sentinel_kwargs)
        return BlockingSentinelConnectionPool(master, sentinel, **host, **self.pool_options)

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A channel of this process only: its queue, with no Redis subscription.

        channels-redis subscribes every socket's channel in Redis (a SUBSCRIBE per handshake,
        a handshake that fails with Redis down before it can be told why). This product never
        sends to one socket's channel from elsewhere: events reach sockets through groups
        (a user's own group included). A `send` to a channel of this process is delivered
        here; a specific channel of another process cannot be reached.
        """
        channel = f"{self.prefix}{prefix}{uuid.uuid4().hex}"
        self.channels[channel] = Inbox()
        return channel

    async def receive(self, channel: str) -> dict[str, Any]:
        """The next message of a channel of this process, already decoded (`decode`)."""
        queue = self.channels.get(channel)
        if queue is None:
            # As new_channel: a channel of this process only, with no Redis subscription.
            queue = self.channels[channel] = Inbox()
        try:
            return await queue.get()
        except (asyncio.CancelledError, TimeoutError, GeneratorExit):
            # channels cancels the receive when its consumer ends; the channel ends with it.
            self.channels.pop(channel, None)
            raise

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        if channel in self.channels:
            # A copy, as if it had crossed Redis: the sender may reuse its dict.
            self.enqueue(channel, copy.deepcopy(message))
            return
        await super().send(channel, message)

    def decode(self, name: str, data: bytes) -> dict[str, Any] | None:
        """A published message, decoded (and decrypted) by the layer's serializer; None, and
        logged, when it cannot be: encrypted with a key this process lacks
        (CHANNEL_LAYER_ENCRYPTION_KEYS), or published by something else."""
        try:
            message = self.channel_layer.deserialize(data)
            if not isinstance(message, dict):
                raise TypeError("not a message")
        except Exception as exc:
            self.undecodable += 1
            now = time.monotonic()
            if now - self.undecodable_logged_at >= UNDECODABLE_LOG_SECONDS:
                logger.warning(
                    "channel layer message dropped: cannot decode channel=%s error=%s dropped=%d",
                    name,
                    type(exc).__name__,
                    self.undecodable,
                )
                self.undecodable = 0
                self.undecodable_logged_at = now
            return None
        return message

    def enqueue(self, channel: str, message: dict[str, Any]) -> None:
        queue = self.channels.get(channel)
        if queue is None:
            return
        if queue.qsize() >= self.capacity:
            # The core layer's behaviour: drop, and say so. A socket fills the hole by seq.
            logger.warning("channel layer queue full, message dropped channel=%s", channel)
            return
        queue.put_nowait(message)

    def listen(self, channel: str, listener: Listener) -> None:
        """Hand `channel`'s group messages to `listener` first (see the module docstring)."""
        self.listeners[channel] = listener

    def unlisten(self, channel: str) -> None:
        self.listeners.pop(channel, None)

    def notify_reconnect(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run `callback` whenever the subscriptions come back after a failure; returns a
        function that unregisters it."""
        self.reconnect_callbacks.add(callback)
        return lambda: self.reconnect_callbacks.discard(callback)

    def notify_outage(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run `callback` when the subscriptions have been down for `outage_grace` seconds
        (once per outage); returns a function that unregisters it."""
        self.outage_callbacks.add(callback)
        return lambda: self.outage_callbacks.discard(callback)


class ChatChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer whose per-loop layer is ChatLoopLayer, its Redis operations
    timed and their failures counted (realtime.metrics)."""

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await timed_layer_call("send", lambda: self._get_layer().send(channel, message))

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await timed_layer_call("group_send", lambda: self._get_layer().group_send(group, message))

    async def group_add(self, group: str, channel: str) -> None:
        await timed_layer_call("group_add", lambda: self._get_layer().group_add(group, channel))

    async def group_discard(self, group: str, channel: str) -> None:
        await timed_layer_call(
            "group_discard", lambda: self._get_layer().group_discard(group, channel)
        )

    def _get_layer(self) -> ChatLoopLayer:
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = self._layers[loop] = ChatLoopLayer(
                *self._args, **self._kwargs, channel_layer=self
            )
            _wrap_close(self, loop)
            return layer
