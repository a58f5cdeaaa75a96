"""Refusing a WebSocket handshake so that the client learns why.

A close sent before accept becomes an HTTP 403 and the close code is lost, so a refusal
accepts first and then closes with the code. When the client offered our subprotocol the
accept must select it: browsers fail a connection whose offered subprotocols were ignored,
and the client would see 1006 instead of the code.
"""

from __future__ import annotations

from typing import Any

from realtime import metrics
from realtime.conf import realtime_settings
from realtime.protocol import CloseCode, wire_code


def select_subprotocol(scope: dict[str, Any]) -> str | None:
    """The subprotocol to accept with: ours when offered, else none. Never a bearer token."""
    ours = realtime_settings().SUBPROTOCOL
    return ours if ours in scope.get("subprotocols", ()) else None


def client_address(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return client[0] if client else "-"


def header(scope: dict[str, Any], name: bytes) -> str | None:
    """The first value of a request header, decoded as latin-1 (as HTTP defines it)."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def refuse(
    scope: dict[str, Any], receive: Any, send: Any, code: CloseCode, reason: str
) -> None:
    """Complete the handshake, then close with `code`; `reason` (a short code, as logged)
    is counted (realtime.metrics)."""
    metrics.count_handshake(reason)
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    metrics.count_close(int(code))
    await send({"type": "websocket.accept", "subprotocol": select_subprotocol(scope)})
    await send({"type": "websocket.close", "code": wire_code(code)})
