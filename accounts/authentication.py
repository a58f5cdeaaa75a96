"""Authenticating access tokens: SimpleJWT's checks, then the token's sign-in session.

Used by every REST view (settings REST_FRAMEWORK) and by the WebSocket handshake and in-band
`refresh` (realtime.auth), so the API and the sockets accept exactly the same tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from accounts.models import LoginSession, User
from accounts.tokens import SESSION_CLAIM


def session_of(claims: Mapping[str, Any], *, for_update: bool = False) -> LoginSession:
    """The open session a validated token belongs to, with its user loaded (one query).

    Raises InvalidToken when the token names no session, and AuthenticationFailed with the
    code `session_not_found` (never existed, or its user was deleted), `user_inactive`,
    `session_revoked` or `password_changed` (the token predates the current password).
    `for_update` locks the session row for the rest of the transaction.
    """
    # A JWT claim: whatever JSON the token carried.
    user_id: Any = claims.get(api_settings.USER_ID_CLAIM)
    session_id = claims.get(SESSION_CLAIM)
    try:
        session_id = uuid.UUID(str(session_id))
    except ValueError:
        raise InvalidToken("Token contained no recognizable session") from None
    sessions = LoginSession.objects.select_related("user")
    if for_update:
        sessions = sessions.select_for_update()
    try:
        # get(), not first(): a unique lookup needs no ORDER BY (compiling one is half the
        # cost of this query, run at every authenticated request and socket handshake).
        session = sessions.get(pk=session_id, user_id=user_id)
    except LoginSession.DoesNotExist:
        raise AuthenticationFailed("Session not found", code="session_not_found") from None
    user = session.user
    if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
        raise AuthenticationFailed("User is inactive", code="user_inactive")
    if session.revoked_at is not None:
        raise AuthenticationFailed(
            f"The session has ended: {session.get_revoked_reason_display()}.",
            code="session_revoked",
        )
    if api_settings.CHECK_REVOKE_TOKEN and claims.get(
        api_settings.REVOKE_TOKEN_CLAIM
    ) != get_md5_hash_password(user.password):
        raise AuthenticationFailed(
            "The user's password has been changed.", code="password_changed"
        )
    return session


class SessionJWTAuthentication(JWTAuthentication):
    """SimpleJWT's JWT authentication, plus: the token's sign-in session must be open."""

    # SimpleJWT annotates its get_user with an unbound TypeVar, which no override can match.
    def get_user(self, validated_token: Token) -> User:  # type: ignore[override]
        """The token's user; raise InvalidToken or AuthenticationFailed (see `session_of`)."""
        return session_of(validated_token.payload).user


class AuthenticatedRequest(Request):
    """The type of `request` in a REST view behind IsAuthenticated (the default permission):
    SessionJWTAuthentication set `user` and `auth`. For type checkers; never instantiated."""

    user: User
    auth: Token


class AuthenticatedHttpRequest(HttpRequest):
    """The type of `request` in the admin, which only signed-in staff reach."""

    user: User
