"""First layer of the WebSocket stack: refuse handshakes from origins not on the allow-list.

Browsers always send `Origin` with a WebSocket handshake and let any page open a socket to
any site, carrying that site's cookies and tickets: checking the origin stops cross-site
WebSocket hijacking. An origin is allowed when it is on ALLOWED_ORIGINS, or, with
ALLOW_SAME_ORIGIN (local settings, so `make run PORT=... HOST=...` works wherever it is
served), when it is the very origin the handshake was sent to (its `Host`, itself one of
ALLOWED_HOSTS). Native clients send no `Origin`; they are let through only when they
authenticate with an `Authorization` header (a browser cannot set one on a WebSocket), and
only when ALLOW_NO_ORIGIN_WITH_HEADER_AUTH is on. The token itself is checked next, by
realtime.middleware.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from realtime.conf import realtime_settings
from realtime.handshake import client_address, header, refuse
from realtime.protocol import CloseCode

logger = logging.getLogger("realtime.security")


class OriginAllowListMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            raise ValueError("OriginAllowListMiddleware only wraps WebSocket applications.")
        origin = header(scope, b"origin")
        if self.allowed(
            origin,
            has_auth_header=header(scope, b"authorization") is not None,
            host=header(scope, b"host"),
        ):
            return await self.inner(scope, receive, send)
        reason = "origin_missing" if origin is None else "origin_not_allowed"
        logger.warning(
            "ws refused reason=%s addr=%s origin=%r path=%s",
            reason,
            client_address(scope),
            origin and origin[:200],
            scope.get("path"),
        )
        return await refuse(scope, receive, send, CloseCode.FORBIDDEN, reason)

    @staticmethod
    def allowed(origin: str | None, *, has_auth_header: bool, host: str | None = None) -> bool:
        limits = realtime_settings()
        if origin is None:
            return has_auth_header and limits.ALLOW_NO_ORIGIN_WITH_HEADER_AUTH
        origin = origin.rstrip("/").lower()
        if origin in limits.ALLOWED_ORIGINS:
            return True
        return limits.ALLOW_SAME_ORIGIN and host is not None and _same_origin(origin, host)


def _same_origin(origin: str, host: str) -> bool:
    """True when `origin` is http(s)://<host> and the host is one Django serves."""
    scheme, _, netloc = origin.partition("://")
    if scheme not in ("http", "https") or netloc != host.lower():
        return False
    # The page's own origin, but a Host of our choosing only: DNS rebinding (an attacker's
    # name pointed at 127.0.0.1) arrives with the attacker's Host and is refused here.
    return validate_host(split_domain_port(host)[0], settings.ALLOWED_HOSTS)
