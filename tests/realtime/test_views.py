"""Rooms, history, members and ticket REST endpoints (realtime.views)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from realtime import services, tickets
from realtime.exceptions import RoomQuotaExceeded
from realtime.models import Membership, Room
from tests.conftest import token_pair
from tests.realtime.conftest import post_messages

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair(user)[0]}")
    return client


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return body["error"]


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def bob_client(bob) -> APIClient:
    return client_for(bob)


@pytest.fixture
def secret(make_room, user):
    """A private room owned by alice (the `user` fixture)."""
    return make_room("secret", owner=user, is_private=True)


# --- Room list and creation --------------------------------------------------------------------


def test_room_list_shows_public_and_own_private_rooms(auth_client, user, bob, make_room):
    make_room("lobby")
    make_room("alice-private", owner=user, is_private=True)
    make_room("bob-private", owner=bob, is_private=True)
    make_room("alice-guest", owner=bob, is_private=True, members=(user,))

    response = auth_client.get("/api/rooms/")

    assert response.status_code == 200
    rooms = response.json()["rooms"]
    assert [room["slug"] for room in rooms] == ["alice-guest", "alice-private", "lobby"]
    assert set(rooms[0]) == {"slug", "title", "is_private", "created_at"}
    assert rooms[0]["is_private"] is True


def test_room_list_requires_authentication(api_client):
    assert_error(api_client.get("/api/rooms/"), 401, "not_authenticated")


def test_create_room_makes_the_creator_owner(auth_client, user):
    response = auth_client.post(
        "/api/rooms/", {"slug": "new-room", "title": "New room", "is_private": True}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["slug"] == "new-room"
    assert response.json()["is_private"] is True
    room = Room.objects.get(slug="new-room")
    assert room.created_by == user
    membership = Membership.objects.get(room=room)
    assert (membership.user, membership.role) == (user, Membership.Role.OWNER)


@pytest.mark.parametrize(
    ("slug", "code"),
    [
        ("Bad Slug", "invalid"),
        ("UPPER", "invalid"),
        ("-leading-dash", "invalid"),
        ("émoji", "invalid"),
        ("x" * 51, "max_length"),
        ("", "blank"),
    ],
)
def test_create_room_with_a_bad_slug_is_a_validation_error(auth_client, slug, code):
    response = auth_client.post("/api/rooms/", {"slug": slug, "title": "T"}, format="json")
    error = assert_error(response, 400, "validation_failed")
    assert code in [item["code"] for item in error["fields"]["slug"]]
    assert not Room.objects.exists()


def test_create_room_with_a_taken_slug_is_a_validation_error(auth_client, bob, make_room):
    make_room("taken", owner=bob)
    response = auth_client.post("/api/rooms/", {"slug": "taken", "title": "Mine"}, format="json")
    error = assert_error(response, 400, "validation_failed")
    assert error["fields"]["slug"][0]["code"] == "unique"
    assert Room.objects.get(slug="taken").created_by == bob


def test_create_room_without_is_private_makes_a_public_room(auth_client):
    # is_private is optional in the serializer (the model's default): it must not be a 500.
    response = auth_client.post("/api/rooms/", {"slug": "open", "title": "Open"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["is_private"] is False
    assert Room.objects.get(slug="open").is_private is False


def test_create_room_with_a_missing_title_is_a_validation_error(auth_client):
    response = auth_client.post("/api/rooms/", {"slug": "no-title"}, format="json")
    error = assert_error(response, 400, "validation_failed")
    assert error["fields"]["title"][0]["code"] == "required"


# --- Room quota: creation rate and rooms per user ----------------------------------------------

ROOM_CREATE_RATE = 3
MAX_OWNED = 3


def create_room(client, slug: str):
    body = {"slug": slug, "title": slug, "is_private": False}
    return client.post("/api/rooms/", body, format="json")


@pytest.fixture
def low_room_create_rate():
    rates = {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
        "room_create": f"{ROOM_CREATE_RATE}/min",
    }
    cache.clear()
    with override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    ):
        yield
    cache.clear()


@pytest.mark.usefixtures("low_room_create_rate")
def test_room_creation_within_the_rate_succeeds(auth_client):
    for n in range(ROOM_CREATE_RATE):
        assert create_room(auth_client, f"room-{n}").status_code == 201


@pytest.mark.usefixtures("low_room_create_rate")
def test_room_creation_is_throttled_per_user_past_the_rate(auth_client, bob_client):
    for n in range(ROOM_CREATE_RATE):
        assert create_room(auth_client, f"room-{n}").status_code == 201

    response = create_room(auth_client, "one-too-many")
    error = assert_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert error["retry_after"] >= 1
    assert not Room.objects.filter(slug="one-too-many").exists()
    # Listing rooms is not creating one, and another user has a budget of their own.
    assert auth_client.get("/api/rooms/").status_code == 200
    assert create_room(bob_client, "bobs-room").status_code == 201


@pytest.mark.usefixtures("low_room_create_rate")
def test_listing_rooms_does_not_spend_the_creation_budget(auth_client):
    for _ in range(ROOM_CREATE_RATE * 2):
        assert auth_client.get("/api/rooms/").status_code == 200

    assert create_room(auth_client, "still-allowed").status_code == 201


@override_settings(ROOMS_MAX_OWNED_PER_USER=MAX_OWNED)
def test_rooms_up_to_the_cap_are_created(auth_client, user):
    for n in range(MAX_OWNED):
        assert create_room(auth_client, f"room-{n}").status_code == 201
    assert Room.objects.filter(created_by=user).count() == MAX_OWNED


@override_settings(ROOMS_MAX_OWNED_PER_USER=MAX_OWNED)
def test_room_past_the_cap_is_refused_with_quota_exceeded(
    auth_client, user, bob_client, make_room
):
    for n in range(MAX_OWNED):
        make_room(f"room-{n}", owner=user)

    error = assert_error(create_room(auth_client, "one-too-many"), 403, "quota_exceeded")
    assert str(MAX_OWNED) in error["message"]
    assert not Room.objects.filter(slug="one-too-many").exists()
    assert create_room(bob_client, "bobs-room").status_code == 201


@override_settings(ROOMS_MAX_OWNED_PER_USER=MAX_OWNED)
def test_leaving_owned_rooms_does_not_reset_the_cap(auth_client, user):
    for n in range(MAX_OWNED):
        assert create_room(auth_client, f"room-{n}").status_code == 201
        assert auth_client.delete(f"/api/rooms/room-{n}/members/alice/").status_code == 204

    assert_error(create_room(auth_client, "one-too-many"), 403, "quota_exceeded")


@override_settings(ROOMS_MAX_OWNED_PER_USER=MAX_OWNED)
def test_a_deleted_room_frees_its_place_under_the_cap(auth_client, user, make_room):
    for n in range(MAX_OWNED):
        make_room(f"room-{n}", owner=user)
    Room.objects.get(slug="room-0").delete()

    assert create_room(auth_client, "replacement").status_code == 201


@override_settings(ROOMS_MAX_OWNED_PER_USER=MAX_OWNED)
def test_the_service_enforces_the_cap_for_every_caller(user, make_room):
    for n in range(MAX_OWNED):
        make_room(f"room-{n}", owner=user)

    with pytest.raises(RoomQuotaExceeded) as raised:
        services.room_create(creator=user, slug="direct", title="Direct", is_private=False)
    assert raised.value.limit == MAX_OWNED
    assert not Room.objects.filter(slug="direct").exists()


@override_settings(ROOMS_MAX_OWNED_PER_USER=MAX_OWNED)
def test_staff_are_bound_by_the_cap_too(make_user, make_room):
    staff = make_user("staffer", is_staff=True, is_superuser=True)
    for n in range(MAX_OWNED):
        make_room(f"room-{n}", owner=staff)

    assert_error(create_room(client_for(staff), "one-too-many"), 403, "quota_exceeded")


@override_settings(ROOMS_MAX_OWNED_PER_USER=MAX_OWNED)
def test_rooms_added_in_the_django_admin_are_not_subject_to_the_cap(
    client, user, make_room, make_user
):
    for n in range(MAX_OWNED):
        make_room(f"room-{n}", owner=user)
    client.force_login(make_user("root", is_staff=True, is_superuser=True))

    response = client.post(
        reverse("admin:realtime_room_add"),
        {
            "slug": "from-the-admin",
            "title": "From the admin",
            "created_by": user.pk,
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-user": user.pk,
            "memberships-0-role": "owner",
        },
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    assert Room.objects.filter(created_by=user).count() == MAX_OWNED + 1


# --- History -----------------------------------------------------------------------------------


def test_history_pages_back_oldest_first(auth_client, user, make_room):
    room = make_room("general", owner=user)
    messages = post_messages(room, user, 5)
    ids = [m.pk for m in messages]

    first = auth_client.get("/api/rooms/general/messages/", {"limit": 2})
    assert first.status_code == 200
    assert [m["id"] for m in first.json()["messages"]] == ids[3:]
    assert first.json()["has_more"] is True

    second = auth_client.get("/api/rooms/general/messages/", {"limit": 2, "before": ids[3]})
    assert [m["id"] for m in second.json()["messages"]] == ids[1:3]
    assert second.json()["has_more"] is True

    last = auth_client.get("/api/rooms/general/messages/", {"limit": 2, "before": ids[1]})
    assert [m["id"] for m in last.json()["messages"]] == ids[:1]
    assert last.json()["has_more"] is False


def test_history_page_that_exactly_fits_has_no_more(auth_client, user, make_room):
    room = make_room("general", owner=user)
    messages = post_messages(room, user, 3)
    response = auth_client.get("/api/rooms/general/messages/", {"limit": 3})
    assert [m["id"] for m in response.json()["messages"]] == [m.pk for m in messages]
    assert response.json()["has_more"] is False


def test_history_defaults_and_message_shape(auth_client, user, make_room):
    room = make_room("general", owner=user)
    message = post_messages(room, user, 1)[0]
    response = auth_client.get("/api/rooms/general/messages/")
    assert response.json() == {
        "messages": [
            {
                "room": "general",
                "id": message.pk,
                "seq": 1,
                "user": {"id": user.pk, "username": "alice"},
                "body": "m0",
                "created_at": message.created_at.isoformat().replace("+00:00", "Z"),
            }
        ],
        "has_more": False,
    }


def test_history_pages_forward_after_a_seq(auth_client, user, make_room):
    room = make_room("general", owner=user)
    post_messages(room, user, 5)

    def seqs(query: str) -> tuple[list[int], bool]:
        body = auth_client.get(f"/api/rooms/general/messages/?{query}").json()
        return [m["seq"] for m in body["messages"]], body["has_more"]

    assert seqs("after=0&limit=2") == ([1, 2], True)
    assert seqs("after=2&limit=2") == ([3, 4], True)
    assert seqs("after=4&limit=2") == ([5], False)
    assert seqs("after=5") == ([], False)
    assert seqs("before=3&limit=5") == ([1, 2], False)


def test_history_takes_before_or_after_not_both(auth_client, user, make_room):
    make_room("general", owner=user)
    response = auth_client.get("/api/rooms/general/messages/?before=3&after=1")
    assert_error(response, 400, "validation_failed")


def test_history_of_a_missing_room_is_not_found(auth_client):
    assert_error(auth_client.get("/api/rooms/nowhere/messages/"), 404, "not_found")


def test_history_of_a_private_room_is_forbidden_to_non_members(bob_client, secret):
    assert_error(bob_client.get("/api/rooms/secret/messages/"), 403, "permission_denied")


def test_history_of_a_private_room_is_open_to_members(bob_client, bob, make_room, user):
    make_room("secret", owner=user, is_private=True, members=(bob,))
    assert bob_client.get("/api/rooms/secret/messages/").status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"before": "abc"}, "before"),
        ({"before": 0}, "before"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
    ],
)
def test_history_with_bad_paging_is_a_validation_error(auth_client, user, make_room, query, field):
    make_room("general", owner=user)
    response = auth_client.get("/api/rooms/general/messages/", query)
    error = assert_error(response, 400, "validation_failed")
    assert set(error["fields"]) == {field}


# --- Members -----------------------------------------------------------------------------------


def test_owner_adds_a_member(auth_client, bob, bob_client, secret):
    response = auth_client.post("/api/rooms/secret/members/", {"username": "BOB"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"room": "secret", "username": "bob", "role": "member"}
    assert bob_client.get("/api/rooms/secret/messages/").status_code == 200


def test_adding_an_existing_member_keeps_their_role(auth_client, user, secret):
    response = auth_client.post("/api/rooms/secret/members/", {"username": "alice"}, format="json")
    assert response.status_code == 201
    assert response.json()["role"] == "owner"


def test_member_who_is_not_owner_cannot_add_members(bob_client, bob, make_user, make_room, user):
    make_user("carol")
    make_room("secret", owner=user, is_private=True, members=(bob,))
    response = bob_client.post("/api/rooms/secret/members/", {"username": "carol"}, format="json")
    assert_error(response, 403, "permission_denied")
    assert not Membership.objects.filter(user__username="carol").exists()


def test_outsider_cannot_add_themselves_to_a_private_room(bob_client, secret):
    response = bob_client.post("/api/rooms/secret/members/", {"username": "bob"}, format="json")
    assert_error(response, 403, "permission_denied")


@pytest.mark.parametrize("username", ["nobody", "disabled"])
def test_adding_an_unknown_or_inactive_user_is_not_found(auth_client, make_user, secret, username):
    make_user("disabled", is_active=False)
    response = auth_client.post(
        "/api/rooms/secret/members/", {"username": username}, format="json"
    )
    assert_error(response, 404, "not_found")


def test_adding_without_a_username_is_a_validation_error(auth_client, secret):
    response = auth_client.post("/api/rooms/secret/members/", {}, format="json")
    error = assert_error(response, 400, "validation_failed")
    assert error["fields"]["username"][0]["code"] == "required"


def test_members_of_a_missing_room_is_not_found(auth_client):
    response = auth_client.post("/api/rooms/nowhere/members/", {"username": "x"}, format="json")
    assert_error(response, 404, "not_found")


def test_owner_removes_a_member(auth_client, bob, bob_client, make_room, user):
    make_room("secret", owner=user, is_private=True, members=(bob,))
    response = auth_client.delete("/api/rooms/secret/members/bob/")
    assert response.status_code == 204
    assert not Membership.objects.filter(user=bob).exists()
    assert_error(bob_client.get("/api/rooms/secret/messages/"), 403, "permission_denied")


def test_member_leaves_by_themselves(bob, bob_client, make_room, user):
    make_room("secret", owner=user, is_private=True, members=(bob,))
    assert bob_client.delete("/api/rooms/secret/members/bob/").status_code == 204
    assert not Membership.objects.filter(user=bob).exists()


def test_member_cannot_remove_another_member(bob_client, bob, make_user, make_room, user):
    carol = make_user("carol")
    make_room("secret", owner=user, is_private=True, members=(bob, carol))
    assert_error(bob_client.delete("/api/rooms/secret/members/carol/"), 403, "permission_denied")
    assert Membership.objects.filter(user=carol).exists()


def test_removing_a_non_member_is_not_found(auth_client, bob, secret):
    assert_error(auth_client.delete("/api/rooms/secret/members/bob/"), 404, "not_found")
    assert_error(auth_client.delete("/api/rooms/secret/members/nobody/"), 404, "not_found")


# --- Tickets -----------------------------------------------------------------------------------


def test_ticket_requires_authentication(api_client):
    assert_error(api_client.post("/api/realtime/ticket/"), 401, "not_authenticated")


def test_ticket_with_an_invalid_token_is_refused(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert_error(api_client.post("/api/realtime/ticket/"), 401, "token_not_valid")


def test_ticket_is_issued_for_the_caller(auth_client, user):
    response = auth_client.post("/api/realtime/ticket/")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"ticket", "expires_in"}
    assert body["expires_in"] == 30
    assert len(body["ticket"]) >= 40
    claims = tickets.ticket_redeem(body["ticket"])
    assert claims["user_id"] == str(user.pk)
    # It stands for the caller's access token: same session, same expiry; never the token.
    assert set(claims) == {"user_id", "sid", "hash_password", "exp"}
    assert tickets.ticket_redeem(body["ticket"]) is None


def test_each_ticket_is_different(auth_client):
    first = auth_client.post("/api/realtime/ticket/").json()["ticket"]
    second = auth_client.post("/api/realtime/ticket/").json()["ticket"]
    assert first != second


def test_ticket_endpoint_accepts_post_only(auth_client):
    assert_error(auth_client.get("/api/realtime/ticket/"), 405, "method_not_allowed")


def test_members_are_listed_owner_first_to_whoever_may_read_the_room(
    auth_client, bob_client, user, make_user, make_room
):
    carol, dave = make_user("carol"), make_user("dave")
    make_room("secret", owner=user, is_private=True, members=(dave, carol))
    response = auth_client.get("/api/rooms/secret/members/")
    assert response.status_code == 200
    assert response.json() == {
        "members": [
            {"username": "alice", "role": "owner"},
            {"username": "carol", "role": "member"},
            {"username": "dave", "role": "member"},
        ]
    }
    assert_error(bob_client.get("/api/rooms/secret/members/"), 403, "permission_denied")
