"""This process's open sockets, and the upkeep done for all of them at once.

With Redis, one background task per process (per event loop) does two things every
REDIS_CHECK_SECONDS:

* It checks that Redis still holds what this process wrote to it: connection slots and
  presence entries live there, and a Redis restart, failover or flush empties it silently.
  The process keeps a random "epoch" key in Redis; when the key is gone or changed, Redis
  lost its data, and every socket of the process restores itself: it rejoins its groups,
  catches up on what its rooms said meanwhile, and its slot and presence are written again;
  if Redis refuses, the socket is closed with 4013 so that its client reconnects.
* Every third of CONNECTION_TTL_SECONDS (or of PRESENCE_TTL_SECONDS, if shorter) it renews
  its sockets' connection slots (realtime.connections) and presence entries
  (realtime.presence), so that those of a killed process expire, and ends the presence of
  users whose entries expired in the rooms its sockets are in.

The same restore runs when the channel layer's subscriptions come back after losing their
connection (realtime.layers): whatever was published meanwhile never arrived.

Without Redis (one process, in-memory layer) nothing can be lost and there is no task.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import weakref
from typing import Any, Protocol

from channels.layers import get_channel_layer
from django.conf import settings

from config.backends import BACKEND_ERRORS
from realtime import groups
from realtime.conf import realtime_settings
from realtime.connections import ConnectionSlots, MemorySlots, RedisSlots, Slot
from realtime.presence import Entry, PresenceStore, presence_store
from realtime.redis import key, redis_client

logger = logging.getLogger("realtime.connection")

# Sockets restored at once after a Redis reset: enough to be quick, few enough that the
# restore does not take every connection of the channel layer's pool.
RESTORE_CONCURRENCY = 20


class LocalSocket(Protocol):
    slot: Slot

    def presence_entries(self) -> list[Entry]:
        """The socket's presence in each room it joined."""

    async def restore(self) -> None:
        """Rejoin every group after Redis lost them; close with 4013 if that fails."""

    async def abort_unavailable(self) -> None:
        """Close with 4013: the realtime backends are unavailable."""


class LocalSockets:
    def __init__(self) -> None:
        self.sockets: set[LocalSocket] = set()
        self.slots: ConnectionSlots = RedisSlots() if settings.REDIS_URL else MemorySlots()
        self.presence: PresenceStore = presence_store()
        self.epoch: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._restoring: asyncio.Future[None] | None = None
        self._closing: asyncio.Future[list[None]] | None = None
        self._redis_failing = False

    async def add(self, socket: LocalSocket) -> None:
        """Track a socket before it writes to Redis, so a reset after this is noticed."""
        if settings.REDIS_URL and self.epoch is None:
            await self.check_epoch()
        self.sockets.add(socket)
        if settings.REDIS_URL and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._upkeep())
            # Only realtime.layers' layer reports reconnects and outages.
            layer: Any = get_channel_layer()
            if hasattr(layer, "notify_reconnect"):
                layer.notify_reconnect(self._after_reconnect)
                layer.notify_outage(self._after_outage)

    def _after_reconnect(self) -> None:
        """The channel layer's subscriptions are back after a failure: what was published
        meanwhile never arrived, so every socket catches up (and rejoins, harmlessly)."""
        self._restoring = asyncio.ensure_future(self.restore_all())

    def _after_outage(self) -> None:
        """The channel layer's subscriptions are down past a blip: no socket here can hear
        its rooms, so each is closed with 4013 and its client resumes once Redis is back."""
        sockets = list(self.sockets)
        logger.warning("channel layer down: closing %d sockets with 4013", len(sockets))
        self._closing = asyncio.ensure_future(
            asyncio.gather(*(socket.abort_unavailable() for socket in sockets))
        )

    def discard(self, socket: LocalSocket) -> None:
        self.sockets.discard(socket)

    async def check_epoch(self) -> bool:
        """Read the epoch key, creating it when missing; True if Redis lost its data since
        the last check (the key vanished or changed)."""
        redis = redis_client()
        epoch_key = key("epoch")
        # A string (the client decodes responses); redis-py's types allow bytes too.
        current: str | None = await redis.get(epoch_key)  # type: ignore[assignment]
        if current is not None and current == self.epoch:
            return False
        if current is None:
            await redis.set(epoch_key, secrets.token_hex(8), nx=True)
            current = await redis.get(epoch_key)  # type: ignore[assignment]
        lost = self.epoch is not None
        self.epoch = current
        return lost

    async def restore_all(self) -> None:
        sockets = list(self.sockets)
        logger.warning("redis lost its data or the connection: restoring %d sockets", len(sockets))
        gate = asyncio.Semaphore(RESTORE_CONCURRENCY)

        async def restore(socket: LocalSocket) -> None:
            async with gate:
                await socket.restore()

        await asyncio.gather(*(restore(socket) for socket in sockets))
        await self.renew()

    async def renew(self) -> None:
        """Renew the connection slots and presence entries of every socket here, then end
        the presence of users whose entries expired (a killed process's) in their rooms."""
        sockets = list(self.sockets)
        await self.slots.renew(socket.slot for socket in sockets)
        entries = [entry for socket in sockets for entry in socket.presence_entries()]
        await self.presence.renew(entries)
        slugs = {entry.room_id: entry.room_slug for entry in entries}
        for room_id, user in await self.presence.sweep(slugs):
            logger.info("presence expired room=%s user=%s", room_id, user["id"])
            await groups.announce_presence(room_id, slugs[room_id], user, "leave")

    async def _upkeep(self) -> None:
        limits = realtime_settings()
        renew_every = min(limits.CONNECTION_TTL_SECONDS, limits.PRESENCE_TTL_SECONDS) / 3
        loop = asyncio.get_running_loop()
        renewed_at = loop.time()
        while True:
            await asyncio.sleep(limits.REDIS_CHECK_SECONDS)
            try:
                if await self.check_epoch():
                    await self.restore_all()
                    renewed_at = loop.time()
                elif loop.time() - renewed_at >= renew_every:
                    await self.renew()
                    renewed_at = loop.time()
            except BACKEND_ERRORS as exc:
                # The sockets find out for themselves (their frames fail, the layer's
                # receive loop closes them with 4013); this only has to try again.
                if not self._redis_failing:
                    logger.warning("redis upkeep failed error=%s", type(exc).__name__)
                self._redis_failing = True
                continue
            except Exception:
                # A bug must not end the upkeep of every socket of the process for good.
                logger.exception("redis upkeep crashed")
                continue
            if self._redis_failing:
                logger.info("redis upkeep recovered")
            self._redis_failing = False


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LocalSockets] = (
    weakref.WeakKeyDictionary()
)


def local_sockets() -> LocalSockets:
    """The running loop's registry (one per daphne process; one per in-process test)."""
    loop = asyncio.get_running_loop()
    registry = _by_loop.get(loop)
    if registry is None:
        registry = _by_loop[loop] = LocalSockets()
    return registry
