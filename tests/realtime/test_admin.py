"""The chat admin: rooms with their members, memberships and messages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from realtime import services
from realtime.models import Membership, Room

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def chat(make_user):
    """Two rooms, two people and a message from each in a different room."""
    bob, carol = make_user("bob"), make_user("carol")
    lobby = Room.objects.create(slug="lobby", title="Lobby", created_by=bob)
    backstage = Room.objects.create(slug="backstage", title="Backstage", is_private=True)
    Membership.objects.create(user=bob, room=lobby, role=Membership.Role.OWNER)
    Membership.objects.create(user=carol, room=backstage)
    return {
        "bob": bob,
        "carol": carol,
        "lobby": lobby,
        "backstage": backstage,
        "hello": services.message_store(room=lobby, author=bob, body="hello from the lobby"),
        "psst": services.message_store(room=backstage, author=carol, body="psst, over here"),
    }


def listed(response) -> list:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


@pytest.mark.parametrize("model", ["room", "membership", "message"])
def test_changelist_and_add_pages_load(admin_client, chat, model):
    changelist = admin_client.get(reverse(f"admin:realtime_{model}_changelist"))
    add = admin_client.get(reverse(f"admin:realtime_{model}_add"))

    assert changelist.status_code == 200
    assert len(changelist.context["cl"].result_list) == 2
    # Messages are what people said: never written in the admin, only redacted.
    assert add.status_code == (403 if model == "message" else 200)


def test_messages_are_redacted_not_deleted(admin_client, chat):
    hello = chat["hello"]
    response = admin_client.post(
        reverse("admin:realtime_message_changelist"),
        {"action": "redact_messages", "_selected_action": [hello.pk]},
        follow=True,
    )
    assert response.status_code == 200
    hello.refresh_from_db()
    assert (hello.body, hello.seq) == ("", 1)
    assert hello.redacted_at is not None
    delete = admin_client.get(reverse("admin:realtime_message_delete", args=[hello.pk]))
    assert delete.status_code == 403


@pytest.mark.parametrize(
    ("model", "key"), [("room", "lobby"), ("membership", None), ("message", "hello")]
)
def test_change_page_loads(admin_client, chat, model, key):
    obj = chat[key] if key else Membership.objects.get(user=chat["bob"])

    response = admin_client.get(reverse(f"admin:realtime_{model}_change", args=[obj.pk]))

    assert response.status_code == 200
    assert response.context["original"] == obj


def test_room_change_page_shows_its_members_inline(admin_client, chat):
    response = admin_client.get(reverse("admin:realtime_room_change", args=[chat["lobby"].pk]))

    (inline,) = response.context["inline_admin_formsets"]
    assert [form.instance for form in inline.formset.initial_forms] == [
        Membership.objects.get(user=chat["bob"])
    ]
    assert inline.formset.extra == 0


def test_room_add_form_creates_the_room_with_its_members(admin_client, chat):
    response = admin_client.post(
        reverse("admin:realtime_room_add"),
        {
            "slug": "garden",
            "title": "Garden",
            "created_by": chat["carol"].pk,
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-user": chat["carol"].pk,
            "memberships-0-role": "owner",
        },
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    garden = Room.objects.get(slug="garden")
    assert not garden.is_private
    assert list(garden.memberships.values_list("user__username", "role")) == [("carol", "owner")]


def test_room_add_form_refuses_a_slug_outside_the_wire_format(admin_client):
    response = admin_client.post(
        reverse("admin:realtime_room_add"),
        {
            "slug": "Not A Slug",
            "title": "Bad",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
        },
    )

    assert response.status_code == 200
    assert "slug" in response.context["adminform"].form.errors
    assert not Room.objects.filter(title="Bad").exists()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("from the lobby", "hello"),
        ("carol", "psst"),
        ("backstage", "psst"),
        ("lobby", "hello"),
    ],
    ids=["body", "author-username", "room-slug", "room-slug-and-body"],
)
def test_message_search(admin_client, chat, query, expected):
    response = admin_client.get(reverse("admin:realtime_message_changelist"), {"q": query})

    assert listed(response) == [chat[expected]]


def test_message_search_without_a_match_lists_nothing(admin_client, chat):
    response = admin_client.get(reverse("admin:realtime_message_changelist"), {"q": "zebra"})

    assert listed(response) == []


def test_message_filter_by_room(admin_client, chat):
    url = reverse("admin:realtime_message_changelist")

    lobby = admin_client.get(url, {"room__id__exact": chat["lobby"].pk})
    backstage = admin_client.get(url, {"room__id__exact": chat["backstage"].pk})

    assert listed(lobby) == [chat["hello"]]
    assert listed(backstage) == [chat["psst"]]


def test_membership_filters_and_search(admin_client, chat):
    url = reverse("admin:realtime_membership_changelist")

    owners = admin_client.get(url, {"role__exact": "owner"})
    by_email = admin_client.get(url, {"q": "carol@example.com"})

    assert [m.user for m in listed(owners)] == [chat["bob"]]
    assert [m.user for m in listed(by_email)] == [chat["carol"]]


def test_message_body_is_shortened_in_the_list(admin_client, chat):
    long_body = "x" * 200
    services.message_store(room=chat["lobby"], author=chat["bob"], body=long_body)

    response = admin_client.get(reverse("admin:realtime_message_changelist"))

    content = response.content.decode()
    assert "x" * 77 + "..." in content
    assert long_body not in content


def test_non_staff_user_cannot_open_the_chat_admin(client, make_user):
    client.force_login(make_user("bob"))

    response = client.get(reverse("admin:realtime_message_changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
