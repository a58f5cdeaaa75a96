"""A client that follows docs/protocol.md's resume algorithm: it reconnects after a drop,
resumes every room with `since`, fills what `recovered: false` leaves out over REST, and
re-sends unacknowledged messages with their `client_id`. The chaos tests drive it against
killed processes and a restarted Redis, and check what it ends up holding."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.services.support.api import Account, Api
from tests.services.support.common import ChatEndpoint
from tests.services.support.sockets import ws_connect


@dataclass
class RoomState:
    epoch: str | None = None
    # Every message held, by seq: exactly once each, whatever arrived twice.
    held: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Messages that arrived twice on the wire (live or in history): must stay 0.
    repeats: int = 0

    @property
    def last_seq(self) -> int:
        return max(self.held, default=0)


class ResumingClient:
    def __init__(self, name: str, account: Account, endpoints: list[ChatEndpoint]) -> None:
        self.name = name
        self.account = account
        self.endpoints = endpoints
        self.rooms: dict[str, RoomState] = {}
        # client_id -> (room, body) for sends not acknowledged yet; acked ones: id -> seq.
        self.unacked: dict[str, tuple[str, str]] = {}
        self.acked: dict[str, tuple[str, int]] = {}
        self.reconnects = 0
        self.ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def start(self, rooms: list[str]) -> None:
        for room in rooms:
            self.rooms.setdefault(room, RoomState())
        await self._connect()

    async def _connect(self) -> None:
        """Connect to the first endpoint that answers, resume every room, re-send."""
        while True:
            for endpoint in self.endpoints:
                with contextlib.suppress(OSError, ConnectionClosed, TimeoutError):
                    ws = await ws_connect(endpoint, token=self.account.access, open_timeout=3)
                    ws = await ws.__aenter__()
                    self.ws = ws
                    for room in self.rooms:
                        await self._resume(endpoint, room)
                    self._reader = asyncio.ensure_future(self._read())
                    for client_id, (room, body) in list(self.unacked.items()):
                        await self._send(room, body, client_id)
                    self._connected.set()
                    return
            await asyncio.sleep(0.3)

    async def _resume(self, endpoint: ChatEndpoint, room: str) -> None:
        state = self.rooms[room]
        frame: dict[str, Any] = {"type": "join", "room": room, "ref": f"join-{room}"}
        if state.epoch is not None:
            frame |= {"since": state.last_seq, "epoch": state.epoch}
        assert self.ws is not None
        await self.ws.send(json.dumps(frame))
        async with asyncio.timeout(10):
            while True:
                reply = json.loads(await self.ws.recv())
                if reply.get("ref") == frame["ref"]:
                    break
                self._take(reply)
        assert reply["type"] == "joined", reply
        if state.epoch is not None and not reply["recovered"]:
            # The hole between what we hold and the newest page: page forward over REST.
            await asyncio.to_thread(self._fill, endpoint, room, reply["history"])
        state.epoch = reply["epoch"]
        for message in reply["history"]:
            self._hold(room, message)

    def _fill(self, endpoint: ChatEndpoint, room: str, page: list[dict[str, Any]]) -> None:
        api = Api(endpoint)
        state = self.rooms[room]
        first_shown = page[0]["seq"] if page else None
        after = state.last_seq
        while first_shown is None or after + 1 < first_shown:
            body = api.expect(
                200,
                "GET",
                f"/api/rooms/{room}/messages/?after={after}&limit=100",
                token=self.account.access,
            )
            for message in body["messages"]:
                self._hold(room, message)
            if not body["messages"]:
                return
            after = body["messages"][-1]["seq"]
            if not body["has_more"]:
                return

    def _hold(self, room: str, message: dict[str, Any]) -> None:
        state = self.rooms[room]
        if message["seq"] in state.held:
            state.repeats += 1
        state.held[message["seq"]] = message

    def _take(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "message" and frame["room"] in self.rooms:
            self._hold(frame["room"], frame)
        elif frame["type"] == "ack" and frame.get("ref", "").startswith("send-"):
            client_id = frame["ref"].removeprefix("send-")
            room, _ = self.unacked.pop(client_id, (None, None))
            if room is not None:
                self.acked[client_id] = (room, frame["seq"])

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                self._take(json.loads(raw))
        except ConnectionClosed:
            pass
        # Any close (4013 after a Redis outage, a drop from a killed process): come back.
        self._connected.clear()
        self.reconnects += 1
        await self._connect()

    async def _send(self, room: str, body: str, client_id: str) -> None:
        assert self.ws is not None
        frame = {"type": "send", "room": room, "body": body, "client_id": client_id}
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps({**frame, "ref": f"send-{client_id}"}))

    async def say(self, room: str, body: str) -> None:
        """Send a message; it is re-sent with the same client_id until acknowledged."""
        client_id = uuid.uuid4().hex
        self.unacked[client_id] = (room, body)
        await self._connected.wait()
        await self._send(room, body, client_id)

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await self._reader
        if self.ws is not None:
            with contextlib.suppress(ConnectionClosed, OSError):
                await self.ws.close()
