"""Second layer of the WebSocket stack: authenticate the handshake and set scope["user"].

Credentials are looked for in this order, and the first one found is the only one tried:

1. `Authorization: Bearer <access token>` (native clients);
2. the subprotocol list: `chat.v1` plus `bearer.<access token>` (browsers); the server
   accepts with `chat.v1` and never echoes the token;
3. `?ticket=<one-time ticket>` from POST /api/realtime/ticket/ (any client).

A token in the query string (parameters named token, access, jwt...) is refused outright: URLs
end up in proxy logs and browser history. Tokens are validated by SimpleJWT itself
(JWTAuthentication.get_validated_token and get_user), so the project's SIMPLE_JWT settings,
token types, audience, issuer, algorithm and active-user checks all apply, and so does the
sign-in session check the REST API makes (accounts.authentication). A refused handshake is
accepted and closed with a code (realtime.handshake), and logged to `realtime.security`
with the reason, never the credential. The consumer keeps the Grant: the socket lives no
longer than the token it was opened with, unless an in-band `refresh` renews it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken

from accounts.authentication import session_of
from accounts.models import User
from config.backends import BACKEND_ERRORS
from realtime import tickets
from realtime.db import in_thread
from realtime.handshake import client_address, header, refuse
from realtime.protocol import CloseCode

logger = logging.getLogger("realtime.security")

AuthMethod = Literal["header", "subprotocol", "ticket"]
BEARER_PREFIX = "bearer."
# Query parameters that would carry a credential in a URL; their presence refuses the socket.
FORBIDDEN_QUERY_PARAMS = frozenset(
    {"token", "access", "access_token", "jwt", "auth", "authorization", "bearer", "refresh"}
)
# Refusal reasons and the close code each gets; any other reason is 4101 (unauthenticated).
_REASON_CODES = {
    # A retry cannot succeed: the client must not reconnect.
    "token_in_query": CloseCode.FORBIDDEN,
    "user_inactive": CloseCode.FORBIDDEN,
    # The session ended (signed out, password changed, replayed refresh token): sign in again.
    "session_revoked": CloseCode.SESSION_REVOKED,
    "password_changed": CloseCode.SESSION_REVOKED,
    # The server's fault: retry with backoff.
    "backend_unavailable": CloseCode.TRY_AGAIN_LATER,
}


class HandshakeRefused(Exception):
    """Authentication failed; `reason` is a short code for the log, never client data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def close_code(self) -> CloseCode:
        return _REASON_CODES.get(self.reason, CloseCode.UNAUTHENTICATED)


@dataclass(frozen=True, slots=True)
class Credential:
    method: AuthMethod
    value: str


@dataclass(frozen=True, slots=True)
class Grant:
    """What a credential proved: who, in which sign-in session, until when (unix seconds)."""

    user: User
    session_id: str
    expires_at: int
    method: AuthMethod


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


def _grant(claims: Mapping[str, Any], method: AuthMethod) -> Grant:
    """The grant for validated claims whose session is open; raise HandshakeRefused."""
    try:
        session = session_of(claims)
    except InvalidToken:
        raise HandshakeRefused("invalid_token") from None
    except AuthenticationFailed as exc:
        raise HandshakeRefused(_failure_code(exc)) from None
    return Grant(session.user, str(session.pk), int(claims["exp"]), method)


def grant_for_access_token(raw_token: str, method: AuthMethod = "header") -> Grant:
    """Validate an access token exactly as the REST API does; raise HandshakeRefused.

    SimpleJWT checks signature, algorithm, type, audience, issuer and expiry; then the
    token's session must be open and its user active (accounts.authentication.session_of).
    """
    try:
        validated = JWTAuthentication().get_validated_token(raw_token.encode())
    except InvalidToken:
        raise HandshakeRefused("invalid_token") from None
    return _grant(validated.payload, method)


def _failure_code(exc: AuthenticationFailed) -> str:
    """The failure's code ("user_inactive", "session_revoked"...), else "invalid_token".

    SimpleJWT's AuthenticationFailed carries a dict detail ({"detail": ..., "code": ...}),
    whose get_codes() is a dict too: the code must be read from the detail itself.
    """
    detail = exc.detail
    code = detail.get("code") if isinstance(detail, dict) else getattr(detail, "code", None)
    return str(code) if code else "invalid_token"


def grant_for_ticket(ticket: str) -> Grant:
    """Spend a ticket; the grant of the access token it was issued for. Raise HandshakeRefused."""
    claims = tickets.ticket_redeem(ticket)
    if claims is None:
        raise HandshakeRefused("invalid_ticket")
    return _grant(claims, "ticket")


@in_thread
def authenticate(credential: Credential) -> Grant:
    """The grant a credential proves; raise HandshakeRefused."""
    try:
        if credential.method == "ticket":
            return grant_for_ticket(credential.value)
        return grant_for_access_token(credential.value, credential.method)
    except BACKEND_ERRORS as exc:
        # The ticket store (Redis) or the database: the client should retry with backoff.
        logger.error("ws handshake backend failed error=%s", type(exc).__name__)
        raise HandshakeRefused("backend_unavailable") from None


class TokenAuthMiddleware:
    """Puts the authenticated user on scope["user"] and its Grant on scope["grant"]."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            raise ValueError("TokenAuthMiddleware only wraps WebSocket applications.")
        try:
            credential = get_credential(scope)
            grant = await authenticate(credential)
        except HandshakeRefused as refusal:
            logger.warning(
                "ws refused reason=%s addr=%s origin=%r path=%s",
                refusal.reason,
                client_address(scope),
                (header(scope, b"origin") or "")[:200] or None,
                scope.get("path"),
            )
            return await refuse(scope, receive, send, refusal.close_code, refusal.reason)
        scope = dict(scope, user=grant.user, grant=grant)
        return await self.inner(scope, receive, send)
