"""GET /healthz: 200 when every backing service answers, 503 naming the one that does not."""

from __future__ import annotations

import logging
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from redis.sentinel import Sentinel

from config.redis_hosts import url_options

logger = logging.getLogger(__name__)

# A probe must answer well within a load balancer's check interval, even with Redis hung.
REDIS_TIMEOUT_SECONDS = 1.0


def check_database() -> None:
    """Raise if the default database does not answer a trivial query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _ping(host: dict[str, Any]) -> None:
    """PING one Redis given as a channels-redis `hosts` entry (config.redis_hosts): a URL
    with its TLS options, or a master found through Sentinel."""
    options = dict(host)
    timeouts = {
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
    }
    sentinels: list[redis.Redis] = []
    if "address" in options:
        client = redis.Redis.from_url(options.pop("address"), **options, **timeouts)
    else:
        sentinel = Sentinel(
            options.pop("sentinels"),
            sentinel_kwargs={**timeouts, **options.pop("sentinel_kwargs", {})},
        )
        sentinels = sentinel.sentinels
        client = sentinel.master_for(options.pop("master_name"), **options, **timeouts)
    try:
        client.ping()
    finally:
        # Every probe opens its own connections; none may outlive it.
        client.connection_pool.disconnect()
        for node in sentinels:
            node.close()


def check_redis() -> None:
    """Raise if REDIS_URL's Redis does not answer PING within the timeout."""
    _ping({"address": settings.REDIS_URL, **url_options(settings.REDIS_URL, settings.REDIS_TLS)})


def channel_layer_servers() -> list[dict[str, Any]]:
    """The channel layer's Redis servers other than REDIS_URL's (shards, Sentinel masters)."""
    layers: dict[str, dict[str, Any]] = settings.CHANNEL_LAYERS
    hosts = layers["default"].get("CONFIG", {}).get("hosts", [])
    return [host for host in hosts if host.get("address") != settings.REDIS_URL]


def check_channel_layer() -> None:
    """Raise if one of the channel layer's own Redis servers does not answer PING."""
    for host in channel_layer_servers():
        _ping(host)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": check_database}
    if settings.REDIS_URL:
        checks["redis"] = check_redis
    if channel_layer_servers():
        checks["channel_layer"] = check_channel_layer
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:
            logger.error("health check failed service=%s error=%s", name, type(exc).__name__)
            results[name] = "unavailable"
        else:
            results[name] = "ok"
    healthy = all(state == "ok" for state in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": results},
        status=200 if healthy else 503,
    )
