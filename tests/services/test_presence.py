"""Presence and typing across real daphne processes: several devices are one presence, a
killed process's users leave within PRESENCE_TTL_SECONDS, typing reaches others unstored."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.services.support.api import Api
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import drain, join, recv_until, request, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.asyncio]

PRESENCE_TTL_SECONDS = 3


def presence_of(frames: list[dict]) -> list[tuple[str, str]]:
    return [(f["user"]["username"], f["event"]) for f in frames if f["type"] == "presence"]


async def test_two_devices_on_two_processes_are_one_presence(
    server_a: Server, server_b: Server
) -> None:
    api = Api(server_a)
    watcher, roamer = api.account(), api.account()
    room = api.room(watcher)
    async with ws_connect(server_a, token=watcher.access) as watching:
        joined = await join(watching, room)
        assert [u["username"] for u in joined["presence"]] == [watcher.username]
        async with ws_connect(server_a, token=roamer.access) as phone:
            await join(phone, room)
            async with ws_connect(server_b, token=roamer.access) as laptop:
                seen_by_laptop = await join(laptop, room)
                assert {u["username"] for u in seen_by_laptop["presence"]} == {
                    watcher.username,
                    roamer.username,
                }
                await request(phone, {"type": "leave", "room": room})
                # The laptop still holds the presence: the leave of one device is no news.
                assert presence_of(await drain(watching, 1)) == [(roamer.username, "join")]
        left = await recv_until(watching, lambda f: f["type"] == "presence", within=5)
        assert (left["user"]["username"], left["event"]) == (roamer.username, "leave")


async def test_the_users_of_a_killed_process_leave_within_the_ttl(
    redis_server: RedisServer, start_server: Callable[..., Server]
) -> None:
    ttl = {"PRESENCE_TTL_SECONDS": str(PRESENCE_TTL_SECONDS)}
    doomed = start_server(redis_server.url, name="presence-doomed", **ttl)
    survivor = start_server(redis_server.url, name="presence-survivor", **ttl)
    api = Api(survivor)
    watcher, ghost = api.account(), api.account()
    room = api.room(watcher)
    async with ws_connect(survivor, token=watcher.access) as watching:
        await join(watching, room)
        async with ws_connect(doomed, token=ghost.access) as haunting:
            await join(haunting, room)
            arrived = await recv_until(watching, lambda f: f["type"] == "presence")
            assert arrived["event"] == "join"
            doomed.kill()
            killed_at = time.monotonic()
            left = await recv_until(
                watching, lambda f: f["type"] == "presence", within=PRESENCE_TTL_SECONDS + 10
            )
        assert (left["user"]["username"], left["event"]) == (ghost.username, "leave")
        assert time.monotonic() - killed_at < PRESENCE_TTL_SECONDS * 2 + 1
        # And a newcomer does not see the ghost either.
        async with ws_connect(survivor, token=api.account().access) as newcomer:
            joined = await join(newcomer, room)
        assert ghost.username not in {u["username"] for u in joined["presence"]}


async def test_typing_reaches_the_others_on_every_process_and_is_never_stored(
    server_a: Server, server_b: Server
) -> None:
    api = Api(server_a)
    typist, reader = api.account(), api.account()
    room = api.room(typist)
    async with (
        ws_connect(server_a, token=typist.access) as typing_ws,
        ws_connect(server_b, token=reader.access) as reading_ws,
    ):
        await join(reading_ws, room)
        await join(typing_ws, room)
        await typing_ws.send(json.dumps({"type": "typing", "room": room}))
        notice = await recv_until(reading_ws, lambda f: f["type"] == "typing")
        assert notice == {
            "type": "typing",
            "room": room,
            "user": {"id": notice["user"]["id"], "username": typist.username},
        }
        # The typist hears nothing about themselves.
        assert [f for f in await drain(typing_ws, 0.5) if f["type"] == "typing"] == []
    history = api.expect(200, "GET", f"/api/rooms/{room}/messages/", token=typist.access)
    assert history["messages"] == []
