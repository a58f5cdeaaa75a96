"""Running the ORM from the sockets' event loop, in parallel.

channels' `database_sync_to_async` runs every call of a process on one thread by default
(asgiref's thread_sensitive mode, meant for code that needs thread affinity). The realtime
layer's calls need none, and a handshake storm or a busy room would queue on that one thread
(DESIGN-NOTES: "a handshake that waits on a single thread for the database"). These run on
a pool of DATABASE_THREADS threads of their own, apart from the loop's default executor: a
call spends most of its time waiting for PostgreSQL, so there are more threads than CPUs,
and no more than the database pool has connections (DATABASE_POOL_MAX_SIZE). Each call
takes a connection from that pool and gives it back after, as channels does.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings

P = ParamSpec("P")
T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def executor() -> ThreadPoolExecutor:
    """The process's database threads, started on first use."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=settings.DATABASE_THREADS, thread_name_prefix="database"
            )
        return _executor


def in_thread(func: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """`func` as a coroutine function that runs it on the database threads."""
    return database_sync_to_async(func, thread_sensitive=False, executor=executor())
