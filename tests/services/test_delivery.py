"""Messages cross daphne processes through Redis, and private rooms stay private."""

from __future__ import annotations

import pytest

from tests.services.support.api import Api
from tests.services.support.daphne import Server
from tests.services.support.sockets import (
    drain,
    join,
    message_by_id,
    next_message,
    post,
    request,
    ws_connect,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio]


async def test_public_room_messages_cross_processes_both_ways(
    server_a: Server, server_b: Server, api: Api
) -> None:
    alice, bob = api.account("alice"), api.account("bob")
    room = api.room(alice)
    async with (
        ws_connect(server_a, token=alice.access) as on_a,
        ws_connect(server_b, token=bob.access) as on_b,
    ):
        await join(on_a, room)
        await join(on_b, room)

        sent_on_b = await post(on_b, room, "from b")
        received_on_a = await next_message(on_a)
        assert (received_on_a["id"], received_on_a["body"]) == (sent_on_b, "from b")
        assert received_on_a["user"]["username"] == bob.username

        sent_on_a = await post(on_a, room, "from a")
        received_on_b = await message_by_id(on_b, sent_on_a)
        assert received_on_b["body"] == "from a"
        assert received_on_b["user"]["username"] == alice.username


async def test_private_room_reaches_members_only(
    server_a: Server, server_b: Server, api: Api
) -> None:
    owner, member, outsider = api.account("owner"), api.account("member"), api.account("out")
    room = api.room(owner, private=True)
    api.add_member(owner, room, member)
    async with (
        ws_connect(server_b, token=owner.access) as owner_ws,
        ws_connect(server_a, token=member.access) as member_ws,
        ws_connect(server_a, token=outsider.access) as outsider_ws,
    ):
        await join(owner_ws, room)
        await join(member_ws, room)
        refusal = await request(outsider_ws, {"type": "join", "room": room})
        assert (refusal["type"], refusal["code"]) == ("error", "forbidden")

        sent = await post(owner_ws, room, "members only")
        assert (await next_message(member_ws))["id"] == sent
        # The member already has it, so the broadcast is done: the outsider got nothing.
        assert [f for f in await drain(outsider_ws, 0.5) if f["type"] == "message"] == []
