"""Who is in a room: the users with at least one socket joined to it, across processes.

A user is present in a room while any of their sockets is joined to it: several devices are
one presence. `enter` and `leave` say whether the user's presence began or ended, which is
when the room hears a `presence` event. With Redis, each socket's entry carries an expiry
that its process renews (realtime.local) every third of PRESENCE_TTL_SECONDS: the entries
of a killed process expire within the TTL, and the next sweep by any process that still has
sockets in the room ends those users' presence, so no ghost stays online. Without Redis (one
process) presence lives in memory and dies with the process.

Typing notices are throttled per user and room here too (TYPING_INTERVAL_SECONDS), since
both are short-lived facts about people in rooms that are never stored.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from realtime.conf import realtime_settings
from realtime.redis import key, redis_client


@dataclass(frozen=True, slots=True)
class Entry:
    """One socket's presence in one room."""

    room_id: int
    room_slug: str
    user_id: int
    username: str
    conn: str


class PresenceStore(Protocol):
    async def enter(self, entry: Entry) -> bool:
        """Record the socket in the room; True if its user was not present before."""

    async def leave(self, entry: Entry) -> bool:
        """Remove the socket from the room; True if its user is no longer present."""

    async def members(self, room_id: int) -> list[dict[str, int | str]]:
        """The users present in the room, as {"id", "username"}, by id."""

    async def renew(self, entries: Iterable[Entry]) -> None:
        """Prove these sockets still live; re-creates entries Redis lost."""

    async def sweep(self, room_ids: Iterable[int]) -> list[tuple[int, dict[str, int | str]]]:
        """End the presence of users whose every entry expired: (room, user) pairs."""

    async def may_type(self, room_id: int, user_id: int) -> bool:
        """True at most once per TYPING_INTERVAL_SECONDS per user and room."""


class MemoryPresence:
    """Presence of a single process (no Redis)."""

    def __init__(self) -> None:
        # room -> user -> their sockets there; room -> user -> username
        self.sockets: defaultdict[int, defaultdict[int, set[str]]] = defaultdict(
            lambda: defaultdict(set)
        )
        self.names: defaultdict[int, dict[int, str]] = defaultdict(dict)
        self.typed: dict[tuple[int, int], float] = {}

    async def enter(self, entry: Entry) -> bool:
        sockets = self.sockets[entry.room_id][entry.user_id]
        first = not sockets
        sockets.add(entry.conn)
        self.names[entry.room_id][entry.user_id] = entry.username
        return first

    async def leave(self, entry: Entry) -> bool:
        users = self.sockets.get(entry.room_id)
        if users is None or entry.conn not in users.get(entry.user_id, ()):
            return False
        users[entry.user_id].discard(entry.conn)
        if users[entry.user_id]:
            return False
        del users[entry.user_id]
        self.names[entry.room_id].pop(entry.user_id, None)
        if not users:
            del self.sockets[entry.room_id]
            del self.names[entry.room_id]
        return True

    async def members(self, room_id: int) -> list[dict[str, int | str]]:
        names = self.names.get(room_id, {})
        return [{"id": uid, "username": names[uid]} for uid in sorted(names)]

    async def renew(self, entries: Iterable[Entry]) -> None:
        return None

    async def sweep(self, room_ids: Iterable[int]) -> list[tuple[int, dict[str, int | str]]]:
        return []

    async def may_type(self, room_id: int, user_id: int) -> bool:
        now = time.monotonic()
        last = self.typed.get((room_id, user_id))
        if last is not None and now - last < realtime_settings().TYPING_INTERVAL_SECONDS:
            return False
        self.typed[(room_id, user_id)] = now
        return True


# Per room: a sorted set of present users (score: their latest entry's expiry), a hash of
# their usernames, and per user a sorted set of their sockets (score: expiry).
# KEYS: users, names, the user's sockets. ARGV: now, expiry, user id, username, conn, ttl.
# Returns 1 when the user was absent (no unexpired socket) before this one.
_ENTER = """
local now, expires, uid, conn = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[5]
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local first = redis.call('ZCARD', KEYS[3]) == 0
redis.call('ZADD', KEYS[3], expires, conn)
redis.call('ZADD', KEYS[1], expires, uid)
redis.call('HSET', KEYS[2], uid, ARGV[4])
for _, k in ipairs(KEYS) do redis.call('EXPIRE', k, ARGV[6]) end
if first then return 1 end
return 0
"""
# KEYS as for _ENTER. ARGV: now, user id, conn. Returns 1 when the user's last socket left.
_LEAVE = """
local now, uid = tonumber(ARGV[1]), ARGV[2]
if redis.call('ZREM', KEYS[3], ARGV[3]) == 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[3]) > 0 then return 0 end
redis.call('ZREM', KEYS[1], uid)
redis.call('HDEL', KEYS[2], uid)
return 1
"""
# KEYS: users, names. ARGV: now, the key prefix of the room's per-user socket sets.
# Ends the presence of every user whose sockets all expired; returns [uid, username, ...].
_SWEEP = """
local now, prefix = tonumber(ARGV[1]), ARGV[2]
local gone = {}
for _, uid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  local sockets = prefix .. uid
  redis.call('ZREMRANGEBYSCORE', sockets, '-inf', now)
  if redis.call('ZCARD', sockets) == 0 then
    table.insert(gone, uid)
    table.insert(gone, redis.call('HGET', KEYS[2], uid) or '')
    redis.call('ZREM', KEYS[1], uid)
    redis.call('HDEL', KEYS[2], uid)
  end
end
return gone
"""


class RedisPresence:
    """Presence shared by every process through Redis, with expiring entries."""

    def __init__(self) -> None:
        redis = redis_client()
        self._enter = redis.register_script(_ENTER)
        self._leave = redis.register_script(_LEAVE)
        self._sweep = redis.register_script(_SWEEP)

    @staticmethod
    def _keys(room_id: int, user_id: int | None = None) -> list[str]:
        keys = [key("presence", room_id, "users"), key("presence", room_id, "names")]
        if user_id is not None:
            keys.append(key("presence", room_id, "sockets", user_id))
        return keys

    async def enter(self, entry: Entry) -> bool:
        ttl = realtime_settings().PRESENCE_TTL_SECONDS
        now = time.time()
        first = await self._enter(
            keys=self._keys(entry.room_id, entry.user_id),
            args=[now, now + ttl, entry.user_id, entry.username, entry.conn, ttl],
        )
        return bool(first)

    async def leave(self, entry: Entry) -> bool:
        gone = await self._leave(
            keys=self._keys(entry.room_id, entry.user_id),
            args=[time.time(), entry.user_id, entry.conn],
        )
        return bool(gone)

    async def members(self, room_id: int) -> list[dict[str, int | str]]:
        users_key, names_key = self._keys(room_id)
        redis = redis_client()
        # Expired entries may linger until a sweep: they are not counted.
        # Strings (the client decodes responses), without scores; redis-py's types cover
        # every option at once.
        uids: list[str] = await redis.zrangebyscore(users_key, time.time(), "+inf")  # type: ignore[assignment]
        if not uids:
            return []
        names: list[str | None] = await redis.hmget(names_key, uids)  # type: ignore[assignment]
        return sorted(
            (
                {"id": int(uid), "username": name or ""}
                for uid, name in zip(uids, names, strict=True)
            ),
            key=lambda user: user["id"],
        )

    async def renew(self, entries: Iterable[Entry]) -> None:
        ttl = realtime_settings().PRESENCE_TTL_SECONDS
        expires = time.time() + ttl
        async with redis_client().pipeline(transaction=False) as pipe:
            for entry in entries:
                users, names, sockets = self._keys(entry.room_id, entry.user_id)
                pipe.zadd(sockets, {entry.conn: expires})
                pipe.zadd(users, {str(entry.user_id): expires}, gt=True)
                pipe.hset(names, str(entry.user_id), entry.username)
                for name in (users, names, sockets):
                    pipe.expire(name, ttl)
            await pipe.execute()

    async def sweep(self, room_ids: Iterable[int]) -> list[tuple[int, dict[str, int | str]]]:
        now = time.time()
        ended = []
        for room_id in room_ids:
            users_key, names_key = self._keys(room_id)
            gone = await self._sweep(
                keys=[users_key, names_key], args=[now, key("presence", room_id, "sockets", "")]
            )
            for uid, name in zip(gone[::2], gone[1::2], strict=True):
                ended.append((room_id, {"id": int(uid), "username": name}))
        return ended

    async def may_type(self, room_id: int, user_id: int) -> bool:
        interval_ms = int(realtime_settings().TYPING_INTERVAL_SECONDS * 1000)
        fresh = await redis_client().set(
            key("typing", room_id, user_id), 1, nx=True, px=interval_ms
        )
        return bool(fresh)


def presence_store() -> PresenceStore:
    return RedisPresence() if settings.REDIS_URL else MemoryPresence()
