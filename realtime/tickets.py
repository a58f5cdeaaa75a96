"""One-time WebSocket tickets for clients that cannot set headers or subprotocols.

A signed-in client POSTs /api/realtime/ticket/ and gets a random ticket valid for
TICKET_TTL_SECONDS; it opens /ws/chat/?ticket=<ticket> and the ticket is spent. A ticket
stands for the access token it was bought with: the same user, sign-in session and expiry,
checked again (session open, user active) when it is spent. The cache
(Redis whenever REDIS_URL is set, so every daphne process sees it) holds only a SHA-256 of
the ticket, so a cache dump yields nothing usable. Single use holds under races: of two
sockets presenting the same ticket, only the one whose delete removed the key wins.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.core.cache import cache
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import Token

from accounts.tokens import SESSION_CLAIM
from realtime.conf import realtime_settings

# 32 random bytes: unguessable within any ticket's lifetime by any number of attempts.
TICKET_BYTES = 32
# Longer values are refused before hashing; a real ticket is 43 characters.
MAX_TICKET_LENGTH = 128


def _key(ticket: str) -> str:
    return "ws-ticket:" + hashlib.sha256(ticket.encode()).hexdigest()


# What a ticket keeps of the access token it was bought with: whose, which session, the
# password fingerprint and the expiry. Never the token itself.
TICKET_CLAIMS = (
    jwt_settings.USER_ID_CLAIM,
    SESSION_CLAIM,
    jwt_settings.REVOKE_TOKEN_CLAIM,
    "exp",
)


def ticket_issue(*, access_token: Token) -> str:
    """Store and return a new single-use ticket standing for a validated access token.

    Cache errors propagate."""
    claims = {claim: access_token[claim] for claim in TICKET_CLAIMS if claim in access_token}
    ticket = secrets.token_urlsafe(TICKET_BYTES)
    cache.set(_key(ticket), claims, timeout=realtime_settings().TICKET_TTL_SECONDS)
    return ticket


def ticket_redeem(ticket: str) -> dict[str, Any] | None:
    """Spend the ticket and return its claims; None if unknown, expired or already spent."""
    if not ticket or len(ticket) > MAX_TICKET_LENGTH:
        return None
    key = _key(ticket)
    claims = cache.get(key)
    if not isinstance(claims, dict) or not cache.delete(key):
        return None
    return claims
