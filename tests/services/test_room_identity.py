"""Sockets follow a room's identity, never its name: a slug cannot be changed under joined
sockets, and a new room that reuses an old slug reaches none of the old room's sockets."""

from __future__ import annotations

import pytest

from tests.services.support.admin import create_superuser, django_shell
from tests.services.support.api import Api
from tests.services.support.common import unique_name
from tests.services.support.daphne import Server
from tests.services.support.sockets import drain, join, post, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]


# Plain SQL, children first (Django emulates the cascade), so no post_delete signal fires.
DELETE_ROOM_SILENTLY = """
from django.db import connection
with connection.cursor() as cursor:
    for table, column in (
        ("realtime_message", "room_id"),
        ("realtime_membership", "room_id"),
        ("realtime_room", "id"),
    ):
        cursor.execute(f"DELETE FROM {{table}} WHERE {{column}} = %s", [{room_id}])
"""


def room_id(server: Server, slug: str) -> int:
    out = django_shell(
        server, f"from realtime.models import Room; print(Room.objects.get(slug={slug!r}).pk)"
    )
    return int(out.split()[-1])


async def test_the_admin_cannot_rename_a_room_under_its_members(server_a: Server) -> None:
    api = Api(server_a)
    admin = create_superuser(server_a)
    owner = api.account()
    slug = api.room(owner, private=True)
    renamed = unique_name("renamed")
    saved = admin.submit(
        f"/admin/realtime/room/{room_id(server_a, slug)}/change/", {"slug": renamed}
    )
    assert saved.status == 200, saved.text[:500]
    rooms = {
        room["slug"] for room in api.expect(200, "GET", "/api/rooms/", token=owner.access)["rooms"]
    }
    assert slug in rooms
    assert renamed not in rooms


async def test_a_new_room_reusing_a_slug_reaches_none_of_the_old_rooms_sockets(
    server_a: Server, server_b: Server
) -> None:
    api = Api(server_a)
    member, stranger = api.account(), api.account()
    slug = api.room(member, private=True)
    async with ws_connect(server_b, token=member.access) as inside:
        await join(inside, slug)
        # The room goes away without its events (as when Redis was down at the time)...
        old = room_id(server_a, slug)
        django_shell(server_a, DELETE_ROOM_SILENTLY.format(room_id=old))
        # ...and a stranger's public room takes its name.
        api.expect(
            201,
            "POST",
            "/api/rooms/",
            {"slug": slug, "title": "public now", "is_private": False},
            token=stranger.access,
        )
        async with ws_connect(server_a, token=stranger.access) as outside:
            await join(outside, slug)
            await post(outside, slug, "for the new room only")
            heard = await drain(inside, 2)
    assert [frame for frame in heard if frame["type"] == "message"] == []
