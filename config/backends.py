"""What the backing services raise when they are unavailable, in one place.

Redis (channel layer, cache, tickets, throttles) raises RedisError subclasses, or OSError and
TimeoutError from the socket underneath; the database raises django.db.Error subclasses.
The API answers these with 503 `unavailable`, the WebSocket consumer with `error:
unavailable` or close 1013.
"""

from django.db import Error as DatabaseError
from redis.exceptions import RedisError

BACKEND_ERRORS: tuple[type[BaseException], ...] = (
    RedisError,
    DatabaseError,
    OSError,
    TimeoutError,
)
