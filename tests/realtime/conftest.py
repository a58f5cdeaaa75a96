"""Helpers for the in-process realtime tests: sockets on the real ASGI stack, rooms, logs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.cache import cache

from accounts.models import User
from config.asgi import application
from realtime import services, tickets
from realtime.models import Membership, Message, Room
from tests.conftest import session_token, token_pair

ORIGIN = "http://127.0.0.1:8000"
CHAT_PATH = "/ws/chat/"
SUBPROTOCOL = "chat.v1"
REALTIME_LOGGERS = ("realtime.security", "realtime.connection", "realtime.protocol")


@pytest.fixture(autouse=True)
def _fresh_channel_layer_and_cache() -> Iterator[None]:
    # The in-memory layer is process-wide and its queues belong to the event loop that first
    # used them; every test runs on a new loop, so each one starts from an empty layer.
    async_to_sync(get_channel_layer().flush)()
    cache.clear()
    yield
    async_to_sync(get_channel_layer().flush)()
    cache.clear()


@pytest.fixture
def realtime_logs(caplog: pytest.LogCaptureFixture, monkeypatch) -> pytest.LogCaptureFixture:
    """caplog for the realtime loggers, which do not propagate to the root logger.

    caplog's handler replaces the configured ones so records are seen exactly as the code
    wrote them: the redaction filter on the real handlers would otherwise hide a leak.
    """
    for name in REALTIME_LOGGERS:
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", [caplog.handler])
        monkeypatch.setattr(logger, "level", logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    return caplog


def log_messages(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == logger]


def assert_not_logged(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    for record in caplog.records:
        message = record.getMessage()
        for secret in secrets:
            assert secret not in message, f"{record.name} logged a credential"


async def ticket_for(user: User) -> str:
    """A WebSocket ticket bought with the access token of a new sign-in session of the user."""

    def issue() -> str:
        return tickets.ticket_issue(access_token=session_token(user).access_token)

    return await sync_to_async(issue)()


async def open_session_id(user: User) -> str:
    """The id of a new sign-in session of the user, for calling services as a socket does."""
    access = await sync_to_async(lambda: session_token(user).access_token)()
    return access["sid"]


async def access_token_for(user: User) -> str:
    # token_pair writes an OutstandingToken row, so it must run off the event loop.
    access, _ = await sync_to_async(token_pair)(user)
    return access


def headers_for(
    access: str | None = None, origin: str | None = ORIGIN
) -> list[tuple[bytes, bytes]]:
    headers = []
    if access is not None:
        headers.append((b"authorization", f"Bearer {access}".encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return headers


class ChatCommunicator(WebsocketCommunicator):
    """A communicator that can look past presence and typing notices.

    Most tests are about something else and would otherwise have to read every `presence`
    frame another of their sockets causes; `notices=False` hides them (tests of presence
    and typing keep them).
    """

    NOTICES = frozenset({"presence", "typing"})

    def __init__(self, *args: Any, notices: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notices = notices
        self._held: list[dict[str, Any]] = []

    def _is_notice(self, output: dict[str, Any]) -> bool:
        if self.notices or output.get("type") != "websocket.send" or not output.get("text"):
            return False
        return json.loads(output["text"]).get("type") in self.NOTICES

    async def receive_output(
        self,
        timeout: float = 1,  # noqa: ASYNC109 (the overridden signature)
    ) -> dict[str, Any]:
        if self._held:
            return self._held.pop(0)
        while True:
            output = await super().receive_output(timeout)
            if not self._is_notice(output):
                return output

    async def receive_nothing(
        self,
        timeout: float = 0.1,  # noqa: ASYNC109 (the overridden signature)
        interval: float = 0.01,
    ) -> bool:
        if self._held:
            return False
        while not await super().receive_nothing(timeout, interval):
            output = await super().receive_output()
            if not self._is_notice(output):
                self._held.append(output)
                return False
        return True


class Sockets:
    """Opens communicators against config.asgi.application and disconnects them all at the end."""

    def __init__(self, notices: bool = False) -> None:
        self.opened: list[WebsocketCommunicator] = []
        self.notices = notices

    def communicator(
        self,
        path: str = CHAT_PATH,
        headers: list[tuple[bytes, bytes]] | None = None,
        subprotocols: list[str] | None = None,
    ) -> ChatCommunicator:
        comm = ChatCommunicator(
            application,
            path,
            headers=headers,
            subprotocols=subprotocols,
            notices=self.notices,
        )
        self.opened.append(comm)
        return comm

    async def refused(
        self,
        path: str = CHAT_PATH,
        headers: list[tuple[bytes, bytes]] | None = None,
        subprotocols: list[str] | None = None,
    ) -> int:
        """Open a handshake that must be refused; return the close code it got."""
        comm = self.communicator(path, headers, subprotocols)
        connected, _ = await comm.connect()
        # A refusal accepts and then closes, so that the client can read the code.
        assert connected
        output = await comm.receive_output()
        assert output["type"] == "websocket.close", output
        return output["code"]

    async def open(
        self,
        user: User,
        *,
        path: str = CHAT_PATH,
        origin: str | None = ORIGIN,
    ) -> WebsocketCommunicator:
        """An accepted socket for the user, authenticated by header."""
        access = await access_token_for(user)
        comm = self.communicator(path, headers_for(access, origin))
        connected, _ = await comm.connect()
        assert connected
        return comm

    async def close_all(self) -> None:
        for comm in self.opened:
            # A receive that timed out has already cancelled the application; the failure
            # that caused it is the one to report, not a second one from here.
            if not comm.future.cancelled():
                await comm.disconnect()


@pytest_asyncio.fixture
async def sockets() -> AsyncIterator[Sockets]:
    """Sockets whose presence and typing notices are hidden (see ChatCommunicator)."""
    opened = Sockets()
    try:
        yield opened
    finally:
        await opened.close_all()


@pytest_asyncio.fixture
async def noticing_sockets() -> AsyncIterator[Sockets]:
    """Sockets that receive every frame, presence and typing notices included."""
    opened = Sockets(notices=True)
    try:
        yield opened
    finally:
        await opened.close_all()


# --- Frames ------------------------------------------------------------------------------------


async def exchange(comm: WebsocketCommunicator, frame: dict[str, Any]) -> dict[str, Any]:
    """Send one frame and return the next frame the server sends back."""
    await comm.send_json_to(frame)
    return await comm.receive_json_from()


async def join(comm: WebsocketCommunicator, room: str, ref: str | None = None) -> dict[str, Any]:
    frame = (
        {"type": "join", "room": room}
        if ref is None
        else {"type": "join", "room": room, "ref": ref}
    )
    reply = await exchange(comm, frame)
    assert reply["type"] == "joined", reply
    return reply


async def expect_close(comm: WebsocketCommunicator, within: float = 1) -> int:
    output = await comm.receive_output(within)
    assert output["type"] == "websocket.close", output
    return output["code"]


# --- Rooms -------------------------------------------------------------------------------------


@pytest.fixture
def make_room(db) -> Callable[..., Room]:
    """Create a room owned by `owner` (if given); private rooms admit `members` too."""

    def make(
        slug: str,
        *,
        owner: User | None = None,
        is_private: bool = False,
        members: tuple[User, ...] = (),
    ) -> Room:
        if owner is not None:
            room = services.room_create(
                creator=owner, slug=slug, title=slug.title(), is_private=is_private
            )
        else:
            room = Room.objects.create(slug=slug, title=slug.title(), is_private=is_private)
        for member in members:
            services.membership_add(room=room, user=member, role=Membership.Role.MEMBER)
        return room

    return make


def group_channels(group: str) -> set[str]:
    """Channels in a group of the in-memory layer.

    The consumer also ignores events for rooms it has not joined, so a socket wrongly left in
    a room's group shows no symptom on the wire: only the layer can tell.
    """
    return set(get_channel_layer().groups.get(group, {}))


def post_messages(room: Room, author: User, count: int) -> list[Message]:
    return [services.message_store(room=room, author=author, body=f"m{i}") for i in range(count)]
