"""Caps on open sockets per user and per client address, across every daphne process.

Each open socket holds a slot in two counts: its user's and its client address's
(MAX_CONNECTIONS_PER_USER, MAX_CONNECTIONS_PER_ADDRESS). A handshake past either cap is
accepted and closed with 4009. With Redis (several processes) each count is a sorted set of
the sockets' channel names scored by an expiry time: the process renews its sockets'
entries every third of CONNECTION_TTL_SECONDS (realtime.local), so the sockets of a process
that was killed stop counting within that TTL instead of blocking their users for good.
Without Redis (one process) the counts live in memory and die with the process.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from django.conf import settings

from realtime.conf import realtime_settings
from realtime.redis import key, redis_client


class Admission(Enum):
    ADMITTED = "admitted"
    USER_FULL = "user_full"
    ADDRESS_FULL = "address_full"


@dataclass(frozen=True, slots=True)
class Slot:
    """One socket's place in the counts: its channel name, user and client address."""

    conn: str
    user_id: int
    address: str


class ConnectionSlots(Protocol):
    async def acquire(self, slot: Slot) -> Admission:
        """Take the slot unless its user or address is at the cap; idempotent per socket."""

    async def release(self, slot: Slot) -> None:
        """Give the slot back (the socket closed)."""

    async def renew(self, slots: Iterable[Slot]) -> None:
        """Prove these sockets still live; re-creates entries Redis lost."""


class MemorySlots:
    """Counts for a single process (no Redis): exact, and gone with the process."""

    def __init__(self) -> None:
        self.by_user: defaultdict[int, set[str]] = defaultdict(set)
        self.by_address: defaultdict[str, set[str]] = defaultdict(set)

    async def acquire(self, slot: Slot) -> Admission:
        limits = realtime_settings()
        users, addresses = self.by_user[slot.user_id], self.by_address[slot.address]
        if slot.conn not in users and len(users) >= limits.MAX_CONNECTIONS_PER_USER:
            return Admission.USER_FULL
        if slot.conn not in addresses and len(addresses) >= limits.MAX_CONNECTIONS_PER_ADDRESS:
            return Admission.ADDRESS_FULL
        users.add(slot.conn)
        addresses.add(slot.conn)
        return Admission.ADMITTED

    async def release(self, slot: Slot) -> None:
        name: Any  # a user id or an address, the key of its own table
        for table, name in ((self.by_user, slot.user_id), (self.by_address, slot.address)):
            members = table.get(name)
            if members is not None:
                members.discard(slot.conn)
                if not members:
                    del table[name]

    async def renew(self, slots: Iterable[Slot]) -> None:
        return None


# KEYS: the user's and the address's sorted sets. ARGV: now, the entry's expiry, the
# socket's channel name, the two caps, the keys' TTL. Returns 0 (admitted), 1 (user at its
# cap) or 2 (address at its cap). One script, so no two handshakes can both take the last slot.
_ACQUIRE = """
local now, expires, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local caps = {tonumber(ARGV[4]), tonumber(ARGV[5])}
for i, count in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', count, '-inf', now)
  if not redis.call('ZSCORE', count, member) and redis.call('ZCARD', count) >= caps[i] then
    return i
  end
end
for _, count in ipairs(KEYS) do
  redis.call('ZADD', count, expires, member)
  redis.call('EXPIRE', count, ARGV[6])
end
return 0
"""
_VERDICTS = {0: Admission.ADMITTED, 1: Admission.USER_FULL, 2: Admission.ADDRESS_FULL}
# Renewals are pipelined in batches this large: one round trip per 250 sockets.
_RENEW_BATCH = 250


class RedisSlots:
    """Counts shared by every process through Redis, with expiring entries."""

    def __init__(self) -> None:
        self._acquire = redis_client().register_script(_ACQUIRE)

    @staticmethod
    def _keys(slot: Slot) -> tuple[str, str]:
        return key("conns", "user", slot.user_id), key("conns", "addr", slot.address)

    async def acquire(self, slot: Slot) -> Admission:
        limits = realtime_settings()
        ttl = limits.CONNECTION_TTL_SECONDS
        now = time.time()
        verdict = await self._acquire(
            keys=self._keys(slot),
            args=[
                now,
                now + ttl,
                slot.conn,
                limits.MAX_CONNECTIONS_PER_USER,
                limits.MAX_CONNECTIONS_PER_ADDRESS,
                ttl,
            ],
        )
        return _VERDICTS[int(verdict)]

    async def release(self, slot: Slot) -> None:
        async with redis_client().pipeline(transaction=False) as pipe:
            for count in self._keys(slot):
                pipe.zrem(count, slot.conn)
            await pipe.execute()

    async def renew(self, slots: Iterable[Slot]) -> None:
        ttl = realtime_settings().CONNECTION_TTL_SECONDS
        expires = time.time() + ttl
        slots = list(slots)
        for start in range(0, len(slots), _RENEW_BATCH):
            async with redis_client().pipeline(transaction=False) as pipe:
                for slot in slots[start : start + _RENEW_BATCH]:
                    for count in self._keys(slot):
                        pipe.zadd(count, {slot.conn: expires})
                        pipe.expire(count, ttl)
                await pipe.execute()


def connection_slots() -> ConnectionSlots:
    """The counts for this process: in Redis when REDIS_URL is set, else in memory."""
    if settings.REDIS_URL:
        return RedisSlots()
    return _memory_slots


_memory_slots = MemorySlots()
