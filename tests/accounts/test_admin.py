"""The user admin: pages, search and filters, the add form, and the (de)activation actions."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.forms import MultiWidget
from django.urls import reverse

from accounts.models import LoginSession, User
from accounts.signals import sessions_revoked
from accounts.usernames import username_skeleton
from tests.conftest import PASSWORD, token_pair

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:accounts_user_changelist")
ADD = reverse("admin:accounts_user_add")


@pytest.fixture
def admin_user(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def listed(response) -> set[str]:
    return {user.username for user in response.context["cl"].result_list}


def flash_messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def run_action(admin_client, action, users):
    return admin_client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [user.pk for user in users]},
        follow=True,
    )


def test_changelist_lists_users(admin_client, make_user):
    make_user("bob")

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    assert listed(response) == {"root", "bob"}


def test_changelist_search_matches_username_and_email(admin_client, make_user):
    make_user("bob", email="robert@example.org")
    make_user("carol")

    assert listed(admin_client.get(CHANGELIST, {"q": "bob"})) == {"bob"}
    assert listed(admin_client.get(CHANGELIST, {"q": "robert@"})) == {"bob"}
    assert listed(admin_client.get(CHANGELIST, {"q": "nobody-here"})) == set()


def test_changelist_filters_by_active_and_staff(admin_client, make_user):
    make_user("bob", is_active=False)
    make_user("carol")

    inactive = admin_client.get(CHANGELIST, {"is_active__exact": "0"})
    staff = admin_client.get(CHANGELIST, {"is_staff__exact": "1"})

    assert inactive.status_code == 200
    assert listed(inactive) == {"bob"}
    assert staff.status_code == 200
    assert listed(staff) == {"root"}


def test_add_and_change_pages_load(admin_client, make_user):
    bob = make_user("bob")

    add = admin_client.get(ADD)
    change = admin_client.get(reverse("admin:accounts_user_change", args=[bob.pk]))

    assert add.status_code == 200
    assert 'name="email"' in add.content.decode()
    assert change.status_code == 200
    assert "bob@example.com" in change.content.decode()


def test_add_form_creates_a_user_with_email(admin_client):
    response = admin_client.post(
        ADD,
        {
            "username": "dave",
            "email": "dave@example.com",
            "password1": "violet-kettle-orbit-1987",
            "password2": "violet-kettle-orbit-1987",
        },
    )

    dave = User.objects.get(username="dave")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_user_change", args=[dave.pk])
    assert dave.email == "dave@example.com"
    assert dave.check_password("violet-kettle-orbit-1987")
    assert dave.is_active


def test_add_form_refuses_an_email_taken_in_another_case(admin_client, make_user):
    make_user("bob", email="bob@example.com")

    response = admin_client.post(
        ADD,
        {
            "username": "bobby",
            "email": "BOB@example.com",
            "password1": "violet-kettle-orbit-1987",
            "password2": "violet-kettle-orbit-1987",
        },
    )

    assert response.status_code == 200
    assert "A user with that email already exists." in response.content.decode()
    assert not User.objects.filter(username="bobby").exists()


@pytest.mark.parametrize(
    "username",
    ["b\u043eb", "\uff42\uff4f\uff42", "BOB"],
    ids=["cyrillic-o", "fullwidth", "another-case"],
)
def test_add_form_refuses_a_username_that_looks_like_a_taken_one(
    admin_client, make_user, username
):
    make_user("bob")

    response = admin_client.post(
        ADD,
        {
            "username": username,
            "email": "newcomer@example.com",
            "password1": "violet-kettle-orbit-1987",
            "password2": "violet-kettle-orbit-1987",
        },
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.as_data()
    assert set(errors) == {"username"}
    assert [error.code for error in errors["username"]] == ["unique"]
    assert list(User.objects.exclude(username="root").values_list("username", flat=True)) == [
        "bob"
    ]


def change_url(user: User) -> str:
    return reverse("admin:accounts_user_change", args=[user.pk])


def change_form_data(admin_client, user: User, **changes) -> dict:
    """What the change form posts for `user` as it loads, with `changes` made to its fields."""
    page = admin_client.get(change_url(user))
    data = {}
    for bound in page.context["adminform"].form:
        if bound.field.disabled:
            continue
        value = changes.get(bound.name, bound.value())
        if isinstance(bound.field.widget, MultiWidget):  # the split date and time
            parts = enumerate(bound.field.widget.decompress(value))
            data.update({f"{bound.html_name}_{i}": part for i, part in parts if part is not None})
        elif value not in (None, False):
            data[bound.html_name] = value
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update(
            {management.add_prefix(name): management[name].value() for name in management.fields}
        )
    return data


@pytest.mark.parametrize(
    "changes",
    [{"username": "caroline"}, {"first_name": "Carol"}],
    ids=["rename", "same-name"],
)
def test_change_form_saves_a_user_and_their_username_skeleton(admin_client, make_user, changes):
    carol = make_user("carol")
    make_user("bob")

    response = admin_client.post(
        change_url(carol), change_form_data(admin_client, carol, **changes)
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    carol.refresh_from_db()
    for field, value in changes.items():
        assert getattr(carol, field) == value
    assert carol.username_skeleton == username_skeleton(carol.username)


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("b\u043eb", "A user with a similar username already exists."),
        ("Bob", "A user with that username already exists."),
    ],
    ids=["cyrillic-o", "another-case"],
)
def test_change_form_refuses_renaming_to_a_username_that_looks_like_a_taken_one(
    admin_client, make_user, username, message
):
    carol = make_user("carol")
    make_user("bob")

    data = change_form_data(admin_client, carol, username=username)
    response = admin_client.post(change_url(carol), data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.as_data()
    assert set(errors) == {"username"}
    assert [(error.code, error.message) for error in errors["username"]] == [("unique", message)]
    carol.refresh_from_db()
    assert carol.username == "carol"


def test_deactivate_users_ends_their_sessions(
    admin_client, make_user, django_capture_on_commit_callbacks
):
    bob, carol, erin = make_user("bob"), make_user("carol"), make_user("erin")
    token_pair(bob), token_pair(bob), token_pair(erin)

    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(admin_client, "deactivate_users", [bob, carol])

    assert response.status_code == 200
    assert "Deactivated 2 user(s)." in flash_messages(response)
    assert set(User.objects.filter(is_active=False).values_list("username", flat=True)) == {
        "bob",
        "carol",
    }
    assert set(
        LoginSession.objects.filter(revoked_at__isnull=False).values_list(
            "user__username", "revoked_reason"
        )
    ) == {("bob", "account_disabled")}
    assert LoginSession.objects.filter(user=erin, revoked_at__isnull=True).count() == 1

    # Live sockets are closed by whoever listens for the signal once the change commits.
    received = []

    def listener(**kwargs):
        received.append((kwargs["user_id"], kwargs["session_ids"], kwargs["reason"]))

    sessions_revoked.connect(listener)
    try:
        for callback in callbacks:
            callback()
    finally:
        sessions_revoked.disconnect(listener)
    assert sorted(received) == sorted(
        [(bob.pk, None, "account_disabled"), (carol.pk, None, "account_disabled")]
    )


def test_deactivated_users_refresh_tokens_stop_working(admin_client, api_client, make_user):
    bob = make_user("bob")
    _, refresh = token_pair(bob)

    run_action(admin_client, "deactivate_users", [bob])

    response = api_client.post("/api/auth/token/refresh/", {"refresh": refresh}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"


def test_deactivate_users_refuses_to_deactivate_the_acting_admin(
    admin_client, admin_user, make_user
):
    bob = make_user("bob")
    token_pair(admin_user)

    response = run_action(admin_client, "deactivate_users", [admin_user, bob])

    messages = flash_messages(response)
    assert "You cannot deactivate yourself." in messages
    assert "Deactivated 1 user(s)." in messages
    admin_user.refresh_from_db()
    bob.refresh_from_db()
    assert admin_user.is_active
    assert not bob.is_active
    assert LoginSession.objects.get(user=admin_user).revoked_at is None
    # The admin is still signed in and can keep working.
    assert admin_client.get(CHANGELIST).status_code == 200


def test_reactivate_users(admin_client, api_client, make_user):
    bob = make_user("bob", is_active=False)
    carol = make_user("carol")

    response = run_action(admin_client, "reactivate_users", [bob, carol])

    assert "Reactivated 1 user(s)." in flash_messages(response)
    bob.refresh_from_db()
    assert bob.is_active
    login = api_client.post(
        "/api/auth/token/", {"username": "bob", "password": PASSWORD}, format="json"
    )
    assert login.status_code == 200


@pytest.mark.parametrize("url", [CHANGELIST, ADD])
def test_non_staff_user_is_sent_to_the_admin_login(client, make_user, url):
    client.force_login(make_user("bob"))

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_permissions_cannot_change_users(client, make_user):
    client.force_login(make_user("helper", is_staff=True))

    assert client.get(CHANGELIST).status_code == 403
