"""Reads of accounts data."""

from __future__ import annotations

from django.db.models import Value
from django.db.models.functions import Lower

from accounts.models import User
from accounts.usernames import lookalike_skeletons


def user_username_taken(*, username: str) -> bool:
    """True when a user has this username, ignoring case."""
    return User.objects.filter(username__iexact=username).exists()


def user_username_lookalike_taken(*, username: str) -> bool:
    """True when a user has a username that looks like this one (accounts.usernames)."""
    return User.objects.filter(username_skeleton__in=lookalike_skeletons(username)).exists()


def user_with_email(*, email: str) -> User | None:
    """The user with this email address ignoring case, if any: the database's LOWER() on both
    sides, exactly as the unique constraint on emails compares them."""
    return (
        User.objects.alias(email_lower=Lower("email"))
        .filter(email_lower=Lower(Value(email)))
        .first()
    )
