"""Memory per idle socket: the server process's resident memory with N sockets open.

On a freshly started server process (memory freed by earlier benchmarks would be reused
and hide the cost), a few sockets are opened and closed first so lazily imported code is
loaded; then VmRSS is read, N sockets (10,000) are opened a batch at a time and entered
into one room (the project joins them; the peers' URL is the room), left idle until the
server is idle, and VmRSS is read again.

    KiB per socket = (RSS after - RSS before) / sockets still open

"in" is how many of the N were open at the end: the "10,000 idle sockets on one process"
target. Afterwards the client drops its sockets and the process is killed, not stopped:
10,000 graceful closes would only measure shutdown.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from bench.client import close_all, close_code, is_open, open_many
from bench.procs import quiesce, rss_kib
from bench.targets import Target

WARMUP = 20
CONCURRENCY = 100


async def memory(target: Target, count: int) -> dict:
    dialect = target.dialect()
    pid = target.server_pids()[0]
    room = await asyncio.to_thread(target.new_room)
    warm = await open_many(dialect, room, WARMUP, concurrency=WARMUP)
    await close_all([o.ws for o in warm if o.ws is not None])
    await asyncio.to_thread(quiesce, target.server_groups())
    before = rss_kib(pid)
    opened = await open_many(dialect, room, count, concurrency=CONCURRENCY, open_timeout=60)
    # Idle means idle: background work a join started (presence, renewals) settles first.
    await asyncio.to_thread(quiesce, target.server_groups(), timeout=60.0)
    sockets = [o.ws for o in opened if o.ws is not None]
    causes: Counter[str] = Counter(o.failure for o in opened if o.failure)
    alive = 0
    for ws in sockets:
        if is_open(ws):
            alive += 1
        else:
            causes[close_code(ws)] += 1
    after = rss_kib(pid)
    for ws in sockets:
        # Dropped, not closed: the process is killed next anyway.
        ws.transport.abort()
    await asyncio.sleep(0.5)
    return {
        "sockets": count,
        "in": alive,
        "causes": dict(causes),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_socket": (after - before) / alive if alive else None,
    }
