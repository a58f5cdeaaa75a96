"""Fixtures shared by every tier: users, tokens and API clients."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User

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
    """(access, refresh) for the user, minted as the login endpoint would."""
    refresh = RefreshToken.for_user(user)
    return str(refresh.access_token), str(refresh)


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
