"""Handshake admission (realtime.admission): a bounded number at a time, first come first
served, and a documented 4013 for those that waited too long."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.test import override_settings

from realtime.admission import HandshakeAdmissionMiddleware
from realtime.protocol import CloseCode

pytestmark = pytest.mark.asyncio

SCOPE = {"type": "websocket", "path": "/ws/chat/", "headers": [], "client": ["127.0.0.1", 1]}


class Handshake:
    """One socket's handshake through the middleware, with an inner app that answers when
    told to: `finish("websocket.accept")` or `finish("websocket.close")`."""

    def __init__(self, app: HandshakeAdmissionMiddleware) -> None:
        self.sent: list[dict[str, Any]] = []
        self.entered = asyncio.Event()
        self._answer: asyncio.Queue[str] = asyncio.Queue()
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._inbox.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.create_task(app(dict(SCOPE), self._inbox.get, self._send))

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def inner(self, send: Any) -> None:
        self.entered.set()
        await send({"type": await self._answer.get()})
        await asyncio.sleep(3600)  # the socket's life, which holds no place

    def finish(self, answer: str) -> None:
        self._answer.put_nowait(answer)


def middleware(handshakes: list[Handshake]) -> HandshakeAdmissionMiddleware:
    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await next(h for h in handshakes if not h.entered.is_set()).inner(send)

    return HandshakeAdmissionMiddleware(inner)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@override_settings(WS_HANDSHAKES_AT_ONCE=2, WS_HANDSHAKE_QUEUE_SECONDS=30)
async def test_handshakes_are_let_through_a_few_at_a_time_in_order() -> None:
    handshakes: list[Handshake] = []
    app = middleware(handshakes)
    for _ in range(4):
        handshakes.append(Handshake(app))
        await settle()
    assert [h.entered.is_set() for h in handshakes] == [True, True, False, False]

    # An accept frees a place, and so does a close: the next in line enters, in order.
    handshakes[1].finish("websocket.accept")
    await settle()
    assert [h.entered.is_set() for h in handshakes] == [True, True, True, False]
    handshakes[0].finish("websocket.close")
    await settle()
    assert all(h.entered.is_set() for h in handshakes)
    for h in handshakes:
        h.task.cancel()


@override_settings(WS_HANDSHAKES_AT_ONCE=1, WS_HANDSHAKE_QUEUE_SECONDS=0.2)
async def test_a_handshake_that_waited_too_long_is_closed_with_4013(caplog) -> None:
    handshakes: list[Handshake] = []
    app = middleware(handshakes)
    handshakes.append(Handshake(app))
    await settle()
    handshakes.append(Handshake(app))
    await asyncio.wait_for(handshakes[1].task, timeout=5)

    assert not handshakes[1].entered.is_set()
    assert handshakes[1].sent == [
        {"type": "websocket.accept", "subprotocol": None},
        {"type": "websocket.close", "code": int(CloseCode.TRY_AGAIN_LATER)},
    ]
    assert any("ws refused reason=busy" in r.getMessage() for r in caplog.records)
    handshakes[0].task.cancel()


@override_settings(WS_HANDSHAKES_AT_ONCE=1, WS_HANDSHAKE_QUEUE_SECONDS=30)
async def test_an_application_that_fails_before_answering_frees_its_place() -> None:
    async def crashing(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    app = HandshakeAdmissionMiddleware(crashing)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(app(dict(SCOPE), asyncio.Queue().get, None), timeout=5)
