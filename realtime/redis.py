"""The process's asyncio Redis client for the realtime layer's own keys (connection counts,
the Redis epoch), apart from the channel layer's pool so neither can starve the other.

One client per event loop: an asyncio connection belongs to the loop that opened it (daphne
runs one loop; each in-process test runs its own).
"""

from __future__ import annotations

import asyncio
import weakref

from django.conf import settings
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from config.redis_hosts import url_options

# Each command is short; a handful of connections serve thousands of sockets' upkeep.
POOL_SIZE = 50
# A hung Redis must fail a handshake well inside daphne's 5-second handshake timeout.
TIMEOUT_SECONDS = 2.0

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = weakref.WeakKeyDictionary()


def redis_client() -> Redis:
    """The running loop's client for settings.REDIS_URL (which must be set)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        pool = BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=POOL_SIZE,
            timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
            socket_timeout=TIMEOUT_SECONDS,
            # A connection Redis closed while it sat in the pool is replaced once, at once.
            retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
            decode_responses=True,
            # rediss://: TLS with REDIS_TLS_CA_FILE and the client certificate, if any.
            **url_options(settings.REDIS_URL, settings.REDIS_TLS),
        )
        client = _clients[loop] = Redis(connection_pool=pool)
    return client


def key(*parts: object) -> str:
    """A key in the project's namespace: key("conns", "user", 5) -> "chat:conns:user:5"."""
    return ":".join((settings.REDIS_KEY_PREFIX, *map(str, parts)))
