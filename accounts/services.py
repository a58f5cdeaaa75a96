"""Writes to accounts data. Views and admin actions call these; they hold no HTTP logic."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import User
from accounts.signals import users_deactivated


def user_register(*, username: str, email: str, password: str) -> User:
    """Create an active user; raise django ValidationError, keyed by field, on bad input.

    Password rules are Django's validators, including similarity to username and email.
    """
    user = User(username=username, email=email)
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.error_list}) from None
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


def user_set_active(*, users: Iterable[User], active: bool) -> int:
    """Activate or deactivate users; return how many changed.

    Deactivation also blacklists every refresh token the users hold and tells listeners
    (the realtime layer closes their sockets), so an account that is switched off is
    switched off everywhere, not only at the next login.
    """
    ids = [user.pk for user in users if user.is_active != active]
    if not ids:
        return 0
    with transaction.atomic():
        User.objects.filter(pk__in=ids).update(is_active=active)
        if not active:
            outstanding = OutstandingToken.objects.filter(user_id__in=ids).exclude(
                blacklistedtoken__isnull=False
            )
            BlacklistedToken.objects.bulk_create(
                [BlacklistedToken(token=token) for token in outstanding],
                ignore_conflicts=True,
            )
    if not active:
        transaction.on_commit(lambda: users_deactivated.send(sender=User, user_ids=ids))
    return len(ids)
