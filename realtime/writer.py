"""Writing a ready text frame to a socket without a coroutine per frame.

A room's message reaches every socket of the room in this process at once (the channel
layer's direct delivery, realtime.layers). Through the ASGI `send` awaitable each frame
would cost a coroutine, and through channels' queues a task switch as well. daphne hands
every application `functools.partial(Server.handle_reply, protocol)`; Server.handle_reply
only checks that the connection is still there and then calls the protocol's handle_reply,
synchronously. `frame_writer` does the same without the coroutine when the server is daphne.
Under anything else (the in-process test tier, another ASGI server) there is no such writer
and frames take the ordinary path, in order, through the consumer's queue.
"""

from __future__ import annotations

import functools
import logging
import types
from collections.abc import Callable
from typing import TYPE_CHECKING

from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol

if TYPE_CHECKING:
    from asgiref.typing import ASGISendCallable

logger = logging.getLogger("realtime.connection")

Writer = Callable[[str], None]


def frame_writer(send: ASGISendCallable) -> Writer | None:
    """A function that writes a text frame now, given the ASGI `send` of a socket under
    daphne (or a wrapper of it that says so with `__wrapped__` and only acts during the
    handshake, as realtime.admission's); None under any other server."""
    while not isinstance(send, functools.partial) and hasattr(send, "__wrapped__"):
        send = send.__wrapped__
    if (
        isinstance(send, functools.partial)
        and isinstance(send.func, types.MethodType)
        and send.func.__func__ is Server.handle_reply
        and len(send.args) == 1
        and isinstance(send.args[0], WebSocketProtocol)
    ):
        return _daphne_writer(send.func.__self__, send.args[0])
    return None


def _daphne_writer(server: Server, protocol: WebSocketProtocol) -> Writer:
    def write(text: str) -> None:
        # Server.handle_reply's own check: a connection gone or going is not written to.
        details = server.connections.get(protocol)
        if details is None or "disconnected" in details or protocol.state != protocol.STATE_OPEN:
            return
        protocol.handle_reply({"type": "websocket.send", "text": text})

    return write
