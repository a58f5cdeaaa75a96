"""`manage.py seed_demo`: demo users on an empty database, and `--reset-passwords` for a
developer who lost the printout, which never touches an account that is not a demo user."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import LoginSession, User
from realtime.models import Room
from tests.conftest import PASSWORD, token_pair

pytestmark = pytest.mark.django_db

RESET = "python manage.py seed_demo --reset-passwords"


def seed(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def printed_passwords(output: str) -> dict[str, str]:
    return dict(re.findall(r"^  (\w+) +(\S+)$", output, flags=re.MULTILINE))


def test_seed_demo_creates_the_demo_users_and_lobby_on_an_empty_database():
    out, _ = seed()

    passwords = printed_passwords(out)
    assert set(passwords) == {"alice", "bob", "admin"}
    for username, password in passwords.items():
        user = User.objects.get(username=username)
        assert user.email == f"{username}@example.com"
        assert user.check_password(password)
    assert User.objects.get(username="admin").is_superuser
    assert Room.objects.filter(slug="lobby", is_private=False).exists()
    assert RESET in out


def test_seed_demo_with_users_already_says_how_to_get_passwords_again(make_user):
    make_user("carol")

    out, _ = seed()

    assert "Users exist already; no demo users created." in out
    assert RESET in out
    assert not User.objects.filter(username__in=["alice", "bob", "admin"]).exists()
    assert printed_passwords(out) == {}


def test_reset_passwords_gives_the_demo_users_new_ones_beside_other_users(make_user):
    first = printed_passwords(seed()[0])
    carol = make_user("carol")

    out, err = seed("--reset-passwords")

    again = printed_passwords(out)
    assert set(again) == {"alice", "bob", "admin"}
    for username, password in again.items():
        user = User.objects.get(username=username)
        assert password != first[username]
        assert user.check_password(password)
        assert not user.check_password(first[username])
    carol.refresh_from_db()
    assert carol.check_password(PASSWORD)
    assert err == ""


def test_reset_passwords_of_named_demo_users_only():
    first = printed_passwords(seed()[0])

    out, _ = seed("--reset-passwords", "bob")

    assert set(printed_passwords(out)) == {"bob"}
    assert User.objects.get(username="alice").check_password(first["alice"])
    assert not User.objects.get(username="bob").check_password(first["bob"])


def test_reset_passwords_leaves_an_account_that_took_a_demo_name_alone(make_user):
    make_user("alice", email="alice@example.com")  # a demo user, as seed_demo made it
    bob = make_user("bob", email="bob@company.test")  # someone's real account

    out, err = seed("--reset-passwords")

    assert set(printed_passwords(out)) == {"alice"}
    assert "bob: not a demo user" in err
    assert "admin: no such user" in err
    bob.refresh_from_db()
    assert bob.check_password(PASSWORD)


def test_reset_passwords_refuses_a_user_that_is_not_a_demo_user(make_user):
    carol = make_user("carol", email="carol@example.com")

    with pytest.raises(CommandError, match="Not a demo user: carol"):
        seed("--reset-passwords", "carol")

    carol.refresh_from_db()
    assert carol.check_password(PASSWORD)


def test_reset_passwords_with_no_demo_user_to_reset_fails(make_user):
    make_user("bob", email="bob@company.test")

    with pytest.raises(CommandError, match="No demo user to reset"):
        seed("--reset-passwords")


def test_reset_passwords_ends_the_demo_users_sessions(make_user):
    alice = make_user("alice", email="alice@example.com")
    token_pair(alice)

    seed("--reset-passwords", "alice")

    session = LoginSession.objects.get(user=alice)
    assert session.revoked_at is not None
    assert session.revoked_reason == LoginSession.EndReason.PASSWORD_CHANGED


def test_usernames_without_reset_passwords_are_refused():
    with pytest.raises(CommandError, match="--reset-passwords"):
        seed("alice")
    assert not User.objects.exists()
