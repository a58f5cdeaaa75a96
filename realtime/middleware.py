"""Second layer of the WebSocket stack: authenticate the handshake and set scope["user"].

Credentials are looked for in this order, and the first one found is the only one tried:

1. `Authorization: Bearer <access token>` (native clients);
2. the subprotocol list: `chat.v1` plus `bearer.<access token>` (browsers); the server
   accepts with `chat.v1` and never echoes the token;
3. `?ticket=<one-time ticket>` from POST /api/realtime/ticket/ (any client).

A token in the query string (parameters named token, access, jwt...) is refused outright: URLs
end up in proxy logs and browser history. Tokens are validated by SimpleJWT itself
(JWTAuthentication.get_validated_token and get_user), so the project's SIMPLE_JWT settings,
token types, audience, issuer, algorithm and active-user checks all apply. A refused
handshake is accepted and closed with a code (realtime.handshake), and logged to
`realtime.security` with the reason, never the credential.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken

from accounts.models import User
from config.backends import BACKEND_ERRORS
from realtime import tickets
from realtime.handshake import client_address, header, refuse
from realtime.protocol import CloseCode

logger = logging.getLogger("realtime.security")

AuthMethod = Literal["header", "subprotocol", "ticket"]
BEARER_PREFIX = "bearer."
# Query parameters that would carry a credential in a URL; their presence refuses the socket.
FORBIDDEN_QUERY_PARAMS = frozenset(
    {"token", "access", "access_token", "jwt", "auth", "authorization", "bearer", "refresh"}
)
# Reasons whose retry cannot succeed: the client is told not to reconnect.
_FORBIDDEN_REASONS = frozenset({"token_in_query", "user_inactive"})
# Reasons that are the server's fault: the client should retry with backoff.
_UNAVAILABLE_REASONS = frozenset({"backend_unavailable"})


class HandshakeRefused(Exception):
    """Authentication failed; `reason` is a short code for the log, never client data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def close_code(self) -> CloseCode:
        if self.reason in _FORBIDDEN_REASONS:
            return CloseCode.FORBIDDEN
        if self.reason in _UNAVAILABLE_REASONS:
            return CloseCode.TRY_AGAIN_LATER
        return CloseCode.UNAUTHENTICATED


@dataclass(frozen=True, slots=True)
class Credential:
    method: AuthMethod
    value: str


def get_credential(scope: dict[str, Any]) -> Credential:
    """Find the handshake's one credential; raise HandshakeRefused if none or misplaced."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if FORBIDDEN_QUERY_PARAMS & {name.lower() for name in query}:
        raise HandshakeRefused("token_in_query")

    authorization = header(scope, b"authorization")
    if authorization is not None:
        parts = authorization.split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise HandshakeRefused("bad_authorization_header")
        return Credential("header", parts[1])

    bearers = [p for p in scope.get("subprotocols", ()) if p.startswith(BEARER_PREFIX)]
    if len(bearers) > 1:
        raise HandshakeRefused("several_bearer_subprotocols")
    if bearers:
        return Credential("subprotocol", bearers[0][len(BEARER_PREFIX) :])

    ticket = query.get("ticket")
    if ticket is not None:
        if len(ticket) != 1:
            raise HandshakeRefused("several_tickets")
        return Credential("ticket", ticket[0])

    raise HandshakeRefused("no_credentials")


def user_from_access_token(raw_token: str) -> User:
    """Validate an access token with SimpleJWT and load its active user; raise HandshakeRefused."""
    authentication = JWTAuthentication()
    try:
        validated = authentication.get_validated_token(raw_token.encode())
        return authentication.get_user(validated)
    except InvalidToken:
        raise HandshakeRefused("invalid_token") from None
    except AuthenticationFailed as exc:
        raise HandshakeRefused(_failure_code(exc)) from None


def _failure_code(exc: AuthenticationFailed) -> str:
    """The failure's code ("user_inactive", "user_not_found"...), else "invalid_token".

    SimpleJWT's AuthenticationFailed carries a dict detail ({"detail": ..., "code": ...}),
    whose get_codes() is a dict too: the code must be read from the detail itself.
    """
    detail = exc.detail
    code = detail.get("code") if isinstance(detail, dict) else getattr(detail, "code", None)
    return str(code) if code else "invalid_token"


def user_from_ticket(ticket: str) -> User:
    """Spend a ticket and load its active user; raise HandshakeRefused."""
    user_id = tickets.ticket_redeem(ticket)
    if user_id is None:
        raise HandshakeRefused("invalid_ticket")
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise HandshakeRefused("user_not_found")
    if not user.is_active:
        raise HandshakeRefused("user_inactive")
    return user


@database_sync_to_async
def authenticate(credential: Credential) -> User:
    """The user a credential belongs to; raise HandshakeRefused."""
    try:
        if credential.method == "ticket":
            return user_from_ticket(credential.value)
        return user_from_access_token(credential.value)
    except BACKEND_ERRORS as exc:
        # The ticket store (Redis) or the database: the client should retry with backoff.
        logger.error("ws handshake backend failed error=%s", type(exc).__name__)
        raise HandshakeRefused("backend_unavailable") from None


class TokenAuthMiddleware:
    """Puts the authenticated user on scope["user"] and the method on scope["auth_method"]."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            raise ValueError("TokenAuthMiddleware only wraps WebSocket applications.")
        try:
            credential = get_credential(scope)
            user = await authenticate(credential)
        except HandshakeRefused as refusal:
            logger.warning(
                "ws refused reason=%s addr=%s origin=%r path=%s",
                refusal.reason,
                client_address(scope),
                (header(scope, b"origin") or "")[:200] or None,
                scope.get("path"),
            )
            return await refuse(scope, receive, send, refusal.close_code)
        scope = dict(scope, user=user, auth_method=credential.method)
        return await self.inner(scope, receive, send)
