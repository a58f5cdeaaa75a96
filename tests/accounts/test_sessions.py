"""Sign-in sessions: tokens bound to them, rotation with reuse detection, and every path that
ends them (services, receivers, the admin)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.tokens import AccessToken

from accounts import services
from accounts.models import LoginSession, User
from accounts.signals import sessions_revoked
from accounts.tokens import SESSION_CLAIM
from tests.accounts.helpers import jwt_payload as jwt_claims
from tests.conftest import PASSWORD, token_pair

pytestmark = pytest.mark.django_db

REFRESH = "/api/auth/token/refresh/"
ME = "/api/auth/me/"


@pytest.fixture
def revocations():
    """The sessions_revoked signals sent during the test, as (user_id, sessions, keep, reason)."""
    received = []

    def listener(**kwargs):
        received.append(
            (kwargs["user_id"], kwargs["session_ids"], kwargs["keep"], kwargs["reason"])
        )

    sessions_revoked.connect(listener)
    yield received
    sessions_revoked.disconnect(listener)


def open_sessions(user: User) -> set[str]:
    return {
        str(pk)
        for pk in user.login_sessions.filter(revoked_at__isnull=True).values_list("pk", flat=True)
    }


def test_login_opens_a_session_that_both_tokens_name(api_client, user):
    response = api_client.post(
        "/api/auth/token/",
        {"username": "alice", "password": PASSWORD},
        format="json",
        HTTP_USER_AGENT="a browser",
    )
    assert response.status_code == 200
    access, refresh = jwt_claims(response.json()["access"]), jwt_claims(response.json()["refresh"])
    session = LoginSession.objects.get()
    assert access[SESSION_CLAIM] == refresh[SESSION_CLAIM] == str(session.pk)
    assert (session.user, session.user_agent, session.ip_address) == (
        user,
        "a browser",
        "127.0.0.1",
    )
    assert session.revoked_at is None


def test_a_token_without_a_session_is_refused(api_client, user):
    response = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    assert response.status_code == 401


def test_rotation_keeps_the_session_and_records_the_refresh(api_client, user):
    _, refresh = token_pair(user)
    session = LoginSession.objects.get()

    response = api_client.post(REFRESH, {"refresh": refresh}, format="json")

    assert response.status_code == 200
    assert jwt_claims(response.json()["refresh"])[SESSION_CLAIM] == str(session.pk)
    session.refresh_from_db()
    assert session.last_refreshed_at is not None
    assert session.expires_at.timestamp() == jwt_claims(response.json()["refresh"])["exp"]


def test_replaying_a_spent_refresh_token_revokes_its_session_only(
    api_client, user, revocations, django_capture_on_commit_callbacks
):
    _, spent = token_pair(user)
    other_access, _ = token_pair(user)
    current = api_client.post(REFRESH, {"refresh": spent}, format="json").json()

    with django_capture_on_commit_callbacks(execute=True):
        replay = api_client.post(REFRESH, {"refresh": spent}, format="json")

    assert replay.status_code == 401
    assert (
        api_client.post(REFRESH, {"refresh": current["refresh"]}, format="json").status_code == 401
    )
    assert api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {current['access']}").status_code == 401
    # The user's other session is untouched.
    assert api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {other_access}").status_code == 200
    sid = jwt_claims(spent)[SESSION_CLAIM]
    assert revocations == [(user.pk, [sid], None, "refresh_reuse")]
    assert LoginSession.objects.get(pk=sid).revoked_reason == "refresh_reuse"


def test_refresh_of_an_unknown_session_is_refused(api_client, user):
    _, refresh = token_pair(user)
    LoginSession.objects.all().delete()
    with pytest.raises(AuthenticationFailed):
        services.session_refresh(raw_token=refresh)


def test_sign_out_ends_one_session_and_sign_out_everywhere_ends_all(
    api_client, user, revocations, django_capture_on_commit_callbacks
):
    _, first_refresh = token_pair(user)
    second_access, second_refresh = token_pair(user)
    third_access, _ = token_pair(user)

    with django_capture_on_commit_callbacks(execute=True):
        assert (
            api_client.post(
                "/api/auth/logout/", {"refresh": first_refresh}, format="json"
            ).status_code
            == 204
        )
    assert open_sessions(user) == {
        jwt_claims(second_access)[SESSION_CLAIM],
        jwt_claims(third_access)[SESSION_CLAIM],
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/auth/logout/", {"refresh": second_refresh, "everywhere": True}, format="json"
        )
    assert response.status_code == 204
    assert open_sessions(user) == set()
    assert [r[3] for r in revocations] == ["logout", "logout_everywhere"]
    # Everywhere means every session, including any that ended earlier: sockets of all close.
    assert revocations[1][1] is None


def test_password_change_keeps_the_callers_session(
    api_client, user, revocations, django_capture_on_commit_callbacks
):
    access, _ = token_pair(user)
    other_access, _ = token_pair(user)
    sid = jwt_claims(access)[SESSION_CLAIM]

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/auth/password/",
            {"old_password": PASSWORD, "new_password": "a-new-and-long-passphrase-8"},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {access}",
        )

    assert response.status_code == 200
    assert jwt_claims(response.json()["access"])[SESSION_CLAIM] == sid
    assert open_sessions(user) == {sid}
    assert revocations == [(user.pk, None, sid, "password_changed")]
    assert api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {other_access}").status_code == 401
    user.refresh_from_db()
    assert user.check_password("a-new-and-long-passphrase-8")


def test_password_change_refuses_a_weak_new_password(api_client, user):
    access, _ = token_pair(user)
    response = api_client.post(
        "/api/auth/password/",
        {"old_password": PASSWORD, "new_password": "123"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {access}",
    )
    assert response.status_code == 400
    assert "new_password" in response.json()["error"]["fields"]
    assert open_sessions(user)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(
            lambda u: setattr(u, "is_active", False), "account_disabled", id="deactivate"
        ),
        pytest.param(
            lambda u: u.set_password("a-brand-new-pass-77"), "password_changed", id="password"
        ),
    ],
)
def test_saving_a_user_changed_anywhere_ends_their_sessions(
    user, revocations, change, reason, django_capture_on_commit_callbacks
):
    token_pair(user)
    change(user)
    with django_capture_on_commit_callbacks(execute=True):
        user.save()
    assert open_sessions(user) == set()
    assert revocations == [(user.pk, None, None, reason)]


def test_saving_a_user_for_anything_else_ends_nothing(
    user, revocations, django_capture_on_commit_callbacks
):
    token_pair(user)
    user.first_name = "Alice"
    with django_capture_on_commit_callbacks(execute=True):
        user.save()
        # A login's rehash of an unchanged password (check_password's setter) is no change.
        user.check_password(PASSWORD)
        user._password = None
        user.save(update_fields=["password"])
    assert open_sessions(user)
    assert revocations == []


def test_deleting_a_user_announces_the_end_of_their_sessions(
    user, revocations, django_capture_on_commit_callbacks
):
    token_pair(user)
    user_id = user.pk
    with django_capture_on_commit_callbacks(execute=True):
        user.delete()
    assert revocations == [(user_id, None, None, "account_deleted")]


def test_the_admin_revokes_selected_sessions(
    client, make_user, user, revocations, django_capture_on_commit_callbacks
):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    access, _ = token_pair(user)
    keep, _ = token_pair(user)
    sid = jwt_claims(access)[SESSION_CLAIM]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:accounts_loginsession_changelist"),
            {"action": "revoke_sessions", "_selected_action": [sid]},
            follow=True,
        )

    assert response.status_code == 200
    assert open_sessions(user) == {jwt_claims(keep)[SESSION_CLAIM]}
    assert [(r[0], r[3]) for r in revocations] == [(user.pk, "revoked_by_admin")]


def test_the_user_admin_lists_open_sessions(client, make_user, user):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    token_pair(user)
    response = client.get(reverse("admin:accounts_user_change", args=[user.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Open sign-in sessions" in page
    assert ">tests<" in page  # the session's user agent, as token_pair records it
