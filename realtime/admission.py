"""First layer of the WebSocket stack: handshakes are worked on a bounded number at a time,
in the order they arrived.

A reconnect wave (a deploy, a network blip) opens thousands of sockets at once. Worked on
all together, every handshake's database read and Redis writes interleave with every
other's, all of them finish late together, and past daphne's handshake timeout daphne drops
them all: a storm that a server could have served in a few seconds refuses almost
everything. Admitted a few dozen at a time, first come first served, each handshake finishes
in about the time its own work takes, and the wave is served in order, as fast as the
process can.

A handshake holds its place from its arrival until the application accepts or closes it;
the socket's life after that is not counted. One that waited WS_HANDSHAKE_QUEUE_SECONDS
without its turn is accepted and closed with 4013 (try again later) at once, with a log
line, rather than left to daphne's handshake timeout, which drops the connection without a
word: its client backs off and comes back when the wave has passed.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from django.conf import settings

from realtime.handshake import client_address, refuse
from realtime.protocol import CloseCode

logger = logging.getLogger("realtime.connection")

_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)

# The messages that end a handshake.
_HANDSHAKE_ENDS = frozenset({"websocket.accept", "websocket.close"})


def _gate() -> asyncio.Semaphore:
    """The running loop's gate (asyncio.Semaphore wakes its waiters in FIFO order)."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(settings.WS_HANDSHAKES_AT_ONCE)
    return gate


class HandshakeAdmissionMiddleware:
    """Lets at most WS_HANDSHAKES_AT_ONCE handshakes of this process through at a time."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        gate = _gate()
        try:
            async with asyncio.timeout(settings.WS_HANDSHAKE_QUEUE_SECONDS):
                await gate.acquire()
        except TimeoutError:
            logger.warning(
                "ws refused reason=busy addr=%s waited=%ss",
                client_address(scope),
                settings.WS_HANDSHAKE_QUEUE_SECONDS,
            )
            return await refuse(scope, receive, send, CloseCode.TRY_AGAIN_LATER, "busy")
        send_releasing = _ReleasingSend(send, gate)
        try:
            return await self.inner(scope, receive, send_releasing)
        finally:
            send_releasing.release()


class _ReleasingSend:
    """The ASGI `send` of a socket that holds a place at the gate: gives the place back
    when the handshake ends (accept or close), then passes every message through.
    `__wrapped__` lets realtime.writer reach the server's own `send` underneath."""

    __slots__ = ("__wrapped__", "gate", "held")

    def __init__(self, send: Any, gate: asyncio.Semaphore) -> None:
        self.__wrapped__ = send
        self.gate = gate
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.gate.release()

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.held and message.get("type") in _HANDSHAKE_ENDS:
            self.release()
        await self.__wrapped__(message)
