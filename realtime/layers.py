"""The Redis channel layer with a bounded, blocking connection pool, timeouts and reconnects.

channels-redis 4.3 builds a plain redis-py ConnectionPool per event loop and passes no limit;
redis-py 8 caps an asyncio pool at 100 connections and raises MaxConnectionsError past that,
so a burst of a few hundred handshakes fails with HTTP 500. A BlockingConnectionPool makes
the burst queue for a connection for up to `pool_timeout` seconds instead, and the socket
timeouts turn a hung Redis into an error the consumer answers (1013) instead of a hang.

A pool built this way also has no retry policy, so after Redis restarts every idle pooled
connection fails its next command ("Connection closed by server") and the socket that drew
it is closed with 1013 although Redis is back. A command that fails with a connection error
is therefore retried once, at once, on a fresh connection; timeouts are not retried, so a
hung Redis still fails within `socket_timeout`.
"""

from __future__ import annotations

from typing import Any

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


class PooledRedisChannelLayer(RedisChannelLayer):
    def __init__(
        self,
        *,
        pool_max_connections: int = 100,
        pool_timeout: float = 5,
        socket_connect_timeout: float = 2,
        socket_timeout: float = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if socket_timeout <= self.brpop_timeout:
            raise ValueError(
                f"socket_timeout ({socket_timeout}s) must exceed the layer's blocking receive "
                f"({self.brpop_timeout}s), or every idle receive fails with a timeout."
            )
        self.pool_options = {
            "max_connections": pool_max_connections,
            "timeout": pool_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            "socket_timeout": socket_timeout,
            # One immediate retry replaces a connection Redis closed while it sat in the pool.
            # No backoff and no second retry: with Redis really down the retry is refused at
            # once, and every socket waiting on the layer's (serialized) receive loop is told
            # 1013 in well under a second instead of seconds apiece.
            "retry": Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        }

    def create_pool(self, index: int) -> BlockingConnectionPool:
        host = dict(self.hosts[index])
        if "address" not in host:
            raise ValueError("PooledRedisChannelLayer takes hosts as redis:// URLs.")
        return BlockingConnectionPool.from_url(host.pop("address"), **host, **self.pool_options)
