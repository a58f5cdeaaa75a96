"""GET /metrics: this process's numbers in Prometheus's text format, for allowed addresses.

Served in front of Django (config.asgi), on the event loop: a scrape neither waits for nor
takes one of the threads that run views, it still answers when those are all busy, and it
does not depend on the Host header (Prometheus scrapes each process at its own address).
Only clients whose address is in METRICS_ALLOWED_NETWORKS (default: this machine) get an
answer; anyone else gets the 404 of a path that does not exist, and a log line. The shipped
nginx answers /metrics with 404 itself: through the proxy every client would look like
the proxy's address (docs/deployment.md, "Metrics").
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from prometheus_client import REGISTRY, make_asgi_app

logger = logging.getLogger("realtime.security")

PATH = "/metrics"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """METRICS_ALLOWED_NETWORKS as networks ("10.0.0.0/8", "127.0.0.1", "::1"); a typo
    stops the start, rather than silently allowing nobody or everybody."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"METRICS_ALLOWED_NETWORKS: {value!r} is not an address or a network"
            ) from None
    return tuple(networks)


def is_allowed(address: str | None, networks: tuple[Network, ...]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # a unix socket peer, or a forwarded header that is not an address
        return False
    return any(ip in network for network in networks)


class MetricsEndpoint:
    """ASGI: answers PATH for allowed addresses; passes every other request to `inner`."""

    def __init__(self, inner: Any, allowed_networks: Iterable[str]) -> None:
        self.inner = inner
        self.networks = parse_networks(allowed_networks)
        self.exporter = make_asgi_app(REGISTRY)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            return await self.inner(scope, receive, send)
        address = (scope.get("client") or (None,))[0]
        if not is_allowed(address, self.networks):
            logger.warning("http metrics refused addr=%s", address)
            return await _answer(send, 404, b"Not Found")
        if scope["method"] not in ("GET", "HEAD"):
            return await _answer(send, 405, b"Method Not Allowed", [(b"allow", b"GET, HEAD")])
        return await self.exporter(scope, receive, send)


async def _answer(
    send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"cache-control", b"no-store"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
