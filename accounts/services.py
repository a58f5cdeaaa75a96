"""Writes to accounts data. Views and admin actions call these; they hold no HTTP logic."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from accounts import selectors
from accounts.authentication import session_of
from accounts.models import LoginSession, User
from accounts.signals import sessions_revoked
from accounts.tokens import SESSION_CLAIM, PresentedRefreshToken, SessionRefreshToken, TokenPair

security_logger = logging.getLogger("realtime.security")


@dataclass(frozen=True)
class Registration:
    """What a sign-up answers, the same whether it made an account or found the email taken."""

    username: str
    email: str


_REGISTER_WELCOME = (
    "Your chat account",
    "An account named {username} was created with this email address; you can sign in now.\n\n"
    "If you did not create it, someone else used your address: please tell the people who "
    "run this chat service.\n",
)
_REGISTER_EMAIL_TAKEN = (
    "Someone tried to sign up with your email address",
    "Someone tried to create a chat account with this email address, which already has one: "
    "{username}. No second account was made, and yours is unchanged.\n\n"
    "If it was you, sign in as {username}. If it was not, you need not do anything.\n",
)

register_logger = logging.getLogger(__name__)


def user_register(
    *, username: str, email: str, password: str, client_addr: str = "-"
) -> Registration:
    """Sign a user up; raise django ValidationError, keyed by field, on bad input.

    A new email address gets an active account and a welcome email. An address that has an
    account gets no second one: its owner is emailed instead, and the attempt is logged on
    realtime.security (never the password). Nobody else can tell the two apart: the same
    Registration comes back, the password is hashed and one email is sent on both paths, and
    a concurrent sign-up with the same address ends the same way (docs/security.md). A
    username that is taken, or looks like one that is, is a field error: usernames are public.

    Password rules are Django's validators, including similarity to username and email.
    """
    user = User(username=username, email=email)
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.error_list}) from None
    user.set_password(password)  # on both paths, so the time taken does not tell them apart
    # No constraint checks: a taken email is not an error here, and User.clean() refuses a
    # taken or look-alike username as a field error.
    user.full_clean(validate_constraints=False)
    owner = selectors.user_with_email(email=user.email)
    if owner is None:
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError as exc:
            owner = _register_race_lost(user, exc)
    if owner is None:
        _register_mail(user.email, *_REGISTER_WELCOME, username=user.username)
    else:
        _register_mail(owner.email, *_REGISTER_EMAIL_TAKEN, username=owner.username)
        security_logger.warning(
            "register with an email that has an account addr=%s username=%r existing_user=%s",
            client_addr,
            user.username,
            owner.pk,
        )
    return Registration(username=user.username, email=user.email)


def _register_race_lost(user: User, error: IntegrityError) -> User:
    """A concurrent sign-up committed first. Refuse the username if it took that (the field
    error the checks would have given), or return the owner of the email it took."""
    user.clean()
    owner = selectors.user_with_email(email=user.email)
    if owner is None:
        raise error
    return owner


def _register_mail(to: str, subject: str, body: str, **context: str) -> None:
    # A failing mail server must not fail the sign-up: the answer would then differ between
    # the two paths, and the account (or the refusal to make a second) stands either way.
    try:
        send_mail(subject, body.format(**context), None, [to])
    except Exception as exc:
        register_logger.error("registration email not sent: %s", type(exc).__name__)


def user_set_active(*, users: Iterable[User], active: bool) -> int:
    """Activate or deactivate users; return how many changed.

    Deactivation also ends every sign-in session the users have (their tokens stop working
    and their sockets close at once); reactivation revives none of them: the user signs in
    again. The admin's change form reaches the same end through accounts.receivers.
    """
    ids = [user.pk for user in users if user.is_active != active]
    if not ids:
        return 0
    with transaction.atomic():
        User.objects.filter(pk__in=ids).update(is_active=active)
        if not active:
            sessions_revoke(user_ids=ids, reason=LoginSession.EndReason.ACCOUNT_DISABLED)
    return len(ids)


def session_start(*, user: User, ip_address: str | None, user_agent: str) -> TokenPair:
    """Open a sign-in session for an authenticated user; return its first token pair."""
    with transaction.atomic():
        session = LoginSession.objects.create(
            user=user,
            ip_address=ip_address,
            user_agent=user_agent[:200],
            expires_at=timezone.now() + jwt_settings.REFRESH_TOKEN_LIFETIME,
        )
        return SessionRefreshToken.for_session(session).pair()


def session_refresh(*, raw_token: str) -> TokenPair:
    """Spend a refresh token and return the session's next pair (rotation).

    Atomic: the spent token's blacklist row is unique, so of several requests presenting one
    token exactly one gets a pair. A token presented after it was spent (a replay: it leaked,
    or a client raced itself) revokes its whole session, as the OAuth 2.0 Security BCP asks
    of refresh-token rotation, and is refused.

    Raises TokenError (bad, expired, wrong type) or AuthenticationFailed (session_of's codes,
    or `refresh_reuse`).
    """
    # SimpleJWT annotates the encoded token it takes as a Token object.
    presented = PresentedRefreshToken(raw_token)  # type: ignore[arg-type]
    with transaction.atomic():
        # The row lock serializes rotations of one session on PostgreSQL; SQLite's IMMEDIATE
        # transactions serialize every writer anyway. The unique row decides either way.
        session = session_of(presented.payload, for_update=True)
        outstanding = OutstandingToken.objects.filter(
            jti=presented[jwt_settings.JTI_CLAIM]
        ).first()
        if outstanding is None:
            raise AuthenticationFailed("Token is not known", code="token_not_valid")
        try:
            with transaction.atomic():
                BlacklistedToken.objects.create(token=outstanding)
        except IntegrityError:
            replayed = True
            sessions_revoke(
                user_ids=[session.user_id],
                session_ids=[session.pk],
                reason=LoginSession.EndReason.REFRESH_REUSE,
            )
        else:
            replayed = False
            successor = SessionRefreshToken.successor_of(
                presented, password_hash=session.user.password
            )
            session.last_refreshed_at = timezone.now()
            session.expires_at = datetime_from_epoch(successor["exp"])
            session.save(update_fields=["last_refreshed_at", "expires_at"])
    if replayed:
        security_logger.warning(
            "refresh token replayed user=%s session=%s: session revoked",
            session.user_id,
            session.pk,
        )
        raise AuthenticationFailed(
            "This refresh token was already used; the session is revoked.",
            code="refresh_reuse",
        )
    return successor.pair()


def session_end(*, raw_token: str, everywhere: bool) -> None:
    """Sign out: the refresh token's session ends (with `everywhere`, every session of the
    user), and the token is blacklisted. Ending an ended session is not an error.

    Raises TokenError when the token itself is invalid or expired.
    """
    # SimpleJWT annotates the encoded token it takes as a Token object.
    presented = PresentedRefreshToken(raw_token)  # type: ignore[arg-type]
    session = (
        LoginSession.objects.filter(
            pk=presented.get(SESSION_CLAIM),
            user_id=presented.get(jwt_settings.USER_ID_CLAIM),
        )
        .only("pk", "user_id")
        .first()
    )
    with transaction.atomic():
        outstanding = OutstandingToken.objects.filter(jti=presented[jwt_settings.JTI_CLAIM])
        for token in outstanding:
            BlacklistedToken.objects.get_or_create(token=token)
        if session is None:
            return
        if everywhere:
            sessions_revoke(
                user_ids=[session.user_id], reason=LoginSession.EndReason.LOGOUT_EVERYWHERE
            )
        else:
            sessions_revoke(
                user_ids=[session.user_id],
                session_ids=[session.pk],
                reason=LoginSession.EndReason.LOGOUT,
            )


def sessions_revoke(
    *,
    user_ids: Iterable[int],
    reason: str,
    session_ids: Iterable[uuid.UUID] | None = None,
    keep: uuid.UUID | None = None,
) -> int:
    """End the users' open sessions (only `session_ids` if given, never `keep`); return how
    many ended. After the commit, listeners close the sockets of the ended sessions."""
    user_ids = list(user_ids)
    open_sessions = LoginSession.objects.filter(user_id__in=user_ids, revoked_at__isnull=True)
    # As strings: the revocation event carries them through the channel layer.
    session_keys = None if session_ids is None else [str(pk) for pk in session_ids]
    if session_keys is not None:
        open_sessions = open_sessions.filter(pk__in=session_keys)
    if keep is not None:
        open_sessions = open_sessions.exclude(pk=keep)
    ended = open_sessions.update(revoked_at=timezone.now(), revoked_reason=reason)

    def announce() -> None:
        for user_id in user_ids:
            sessions_revoked.send(
                sender=LoginSession,
                user_id=user_id,
                session_ids=session_keys,
                keep=None if keep is None else str(keep),
                reason=str(reason),
            )

    transaction.on_commit(announce)
    return ended


def user_change_password(
    *, user: User, session_id: uuid.UUID, old_password: str, new_password: str
) -> TokenPair:
    """Change the user's password; every other session ends, this one continues with the
    returned pair. Raise django ValidationError, keyed by field, on a wrong old password or
    a new one the password rules refuse."""
    if not user.check_password(old_password):
        raise ValidationError(
            {"old_password": ValidationError("The current password is wrong.", code="invalid")}
        )
    try:
        validate_password(new_password, user=user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.error_list}) from None
    with transaction.atomic():
        # A queryset update, not save(): accounts.receivers would end every session on a
        # password change, this one included, and this one must survive.
        user.set_password(new_password)
        User.objects.filter(pk=user.pk).update(password=user.password)
        sessions_revoke(
            user_ids=[user.pk], reason=LoginSession.EndReason.PASSWORD_CHANGED, keep=session_id
        )
        session = LoginSession.objects.select_related("user").get(pk=session_id)
        return SessionRefreshToken.for_session(session).pair()
