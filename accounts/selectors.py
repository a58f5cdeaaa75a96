"""Reads of accounts data."""

from __future__ import annotations

from accounts.models import User


def user_username_taken(*, username: str) -> bool:
    """True when a user has this username, ignoring case."""
    return User.objects.filter(username__iexact=username).exists()


def user_email_taken(*, email: str) -> bool:
    """True when a user has this email address, ignoring case."""
    return User.objects.filter(email__iexact=email).exists()
