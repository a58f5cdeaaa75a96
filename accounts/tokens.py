"""JWTs bound to a sign-in session (docs/security.md, "Sessions").

Every token pair belongs to one `LoginSession`: the refresh token and every access token
minted from it carry the session's id in the `sid` claim. Revoking the session (sign-out,
password change, deactivation, a replayed refresh token) therefore ends its refresh tokens
and its access tokens alike, at the next check, without waiting for them to expire.

SimpleJWT still signs, decodes and validates every token; these classes only add the claim
and keep the outstanding-token list (SimpleJWT's blacklist app) in step.
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import datetime_from_epoch, get_md5_hash_password

from accounts.models import LoginSession

SESSION_CLAIM = "sid"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: str
    refresh: str

    def as_dict(self) -> dict[str, str]:
        return {"access": self.access, "refresh": self.refresh}


class SessionRefreshToken(RefreshToken):
    """A refresh token carrying its session's id, recorded as outstanding when minted."""

    @classmethod
    def for_session(cls, session: LoginSession) -> SessionRefreshToken:
        """A new refresh token for the session's user, recorded in the outstanding list."""
        user = session.user
        token = cls()
        token[api_settings.USER_ID_CLAIM] = str(getattr(user, api_settings.USER_ID_FIELD))
        token[SESSION_CLAIM] = str(session.pk)
        if api_settings.CHECK_REVOKE_TOKEN:
            token[api_settings.REVOKE_TOKEN_CLAIM] = get_md5_hash_password(user.password)
        token.record_outstanding(user_id=user.pk)
        return token

    @classmethod
    def successor_of(cls, presented: Token, *, password_hash: str) -> SessionRefreshToken:
        """The next token of a rotation: the presented token's claims (session, user), a new
        `jti` and a fresh lifetime; recorded as outstanding. `password_hash` is the user's
        current one, so a rotation right after a password change carries the new revoke claim.
        """
        successor = cls()
        for claim, value in presented.payload.items():
            if claim not in (api_settings.JTI_CLAIM, "exp", "iat"):
                successor[claim] = value
        if api_settings.CHECK_REVOKE_TOKEN:
            successor[api_settings.REVOKE_TOKEN_CLAIM] = get_md5_hash_password(password_hash)
        successor.record_outstanding(user_id=int(presented[api_settings.USER_ID_CLAIM]))
        return successor

    def record_outstanding(self, *, user_id: int) -> OutstandingToken:
        return OutstandingToken.objects.create(
            user_id=user_id,
            jti=self[api_settings.JTI_CLAIM],
            token=str(self),
            created_at=self.current_time,
            expires_at=datetime_from_epoch(self["exp"]),
        )

    def pair(self) -> TokenPair:
        return TokenPair(access=str(self.access_token), refresh=str(self))


class PresentedRefreshToken(Token):
    """A refresh token as a client presents it: signature, expiry, audience, issuer and type
    verified by SimpleJWT, but not the blacklist: the rotation checks that atomically itself,
    and must tell a token already used (a replay: the session is revoked) from an invalid one.
    """

    token_type = "refresh"  # noqa: S105 (a token type name, not a secret)
    lifetime = api_settings.REFRESH_TOKEN_LIFETIME
