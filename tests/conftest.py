"""Fixtures shared by every tier: users, tokens and API clients."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from accounts import services
from accounts.models import LoginSession, User
from accounts.tokens import SessionRefreshToken

PASSWORD = "correct-horse-battery-staple-42"
_serial = itertools.count(1)


@pytest.fixture
def make_user(db) -> Callable[..., User]:
    """Create an active user with PASSWORD; keyword arguments override fields."""

    def make(username: str | None = None, **fields: object) -> User:
        username = username or f"user{next(_serial)}"
        fields.setdefault("email", f"{username}@example.com")
        return User.objects.create_user(username=username, password=PASSWORD, **fields)

    return make


@pytest.fixture
def user(make_user) -> User:
    return make_user("alice")


def token_pair(user: User) -> tuple[str, str]:
    """(access, refresh) for the user, from a new sign-in session as the login endpoint opens."""
    pair = services.session_start(user=user, ip_address="127.0.0.1", user_agent="tests")
    return pair.access, pair.refresh


def session_token(user: User) -> SessionRefreshToken:
    """The refresh token of a new sign-in session, as an object (`.access_token` gives its
    access token), for tests that take tokens apart or change their claims."""
    session = LoginSession.objects.create(
        user=user, expires_at=timezone.now() + jwt_settings.REFRESH_TOKEN_LIFETIME
    )
    return SessionRefreshToken.for_session(session)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def auth_client(user) -> APIClient:
    """An API client sending the `user` fixture's access token."""
    client = APIClient()
    access, _ = token_pair(user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client
