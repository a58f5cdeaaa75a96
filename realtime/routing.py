"""WebSocket URL patterns. Anything but /ws/chat/ is refused with 4003 instead of a 500."""

import logging
from typing import Any

from django.urls import path, re_path

from realtime.consumers import ChatConsumer
from realtime.handshake import client_address, refuse
from realtime.protocol import CloseCode

logger = logging.getLogger("realtime.security")


async def unknown_path(scope: dict[str, Any], receive: Any, send: Any) -> None:
    logger.warning(
        "ws refused reason=unknown_path addr=%s path=%r",
        client_address(scope),
        scope["path"][:200],
    )
    await refuse(scope, receive, send, CloseCode.FORBIDDEN, "unknown_path")


# django-stubs types a route's view as an HTTP view; channels routes ASGI applications.
websocket_urlpatterns = [
    path("ws/chat/", ChatConsumer.as_asgi()),  # type: ignore[arg-type]
    re_path(r"", unknown_path),  # type: ignore[arg-type]
]
