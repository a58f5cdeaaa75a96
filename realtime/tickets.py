"""One-time WebSocket tickets for clients that cannot set headers or subprotocols.

A signed-in client POSTs /api/realtime/ticket/ and gets a random ticket valid for
TICKET_TTL_SECONDS; it opens /ws/chat/?ticket=<ticket> and the ticket is spent. The cache
(Redis whenever REDIS_URL is set, so every daphne process sees it) holds only a SHA-256 of
the ticket, so a cache dump yields nothing usable. Single use holds under races: of two
sockets presenting the same ticket, only the one whose delete removed the key wins.
"""

from __future__ import annotations

import hashlib
import secrets

from django.core.cache import cache

from realtime.conf import realtime_settings

# 32 random bytes: unguessable within any ticket's lifetime by any number of attempts.
TICKET_BYTES = 32
# Longer values are refused before hashing; a real ticket is 43 characters.
MAX_TICKET_LENGTH = 128


def _key(ticket: str) -> str:
    return "ws-ticket:" + hashlib.sha256(ticket.encode()).hexdigest()


def ticket_issue(*, user_id: int) -> str:
    """Store and return a new single-use ticket for the user. Cache errors propagate."""
    ticket = secrets.token_urlsafe(TICKET_BYTES)
    cache.set(_key(ticket), user_id, timeout=realtime_settings().TICKET_TTL_SECONDS)
    return ticket


def ticket_redeem(ticket: str) -> int | None:
    """Spend the ticket and return its user id; None if unknown, expired or already spent."""
    if not ticket or len(ticket) > MAX_TICKET_LENGTH:
        return None
    key = _key(ticket)
    user_id = cache.get(key)
    if user_id is None or not cache.delete(key):
        return None
    return int(user_id)
