"""Opening sockets: handshakes a second at bounded concurrency, and a storm all at once.

handshakes: K sockets, at most C handshakes in flight (a steady stream of clients, not a
burst); rate = sockets accepted / wall time. For the project a handshake is the real
authenticated one (the access token in an Authorization header, verified against its
sign-in session, the socket counted against the caps in Redis, its user group joined).
The tutorial's handshake joins its room's group; the relay's does nothing.

storm: S sockets started at the same instant (a deploy restart's reconnect wave). Each is
`in` if it opened and was still open a second after the last handshake finished, else
refused, by cause: an HTTP status (daphne's 503, nginx's), a timeout (OPEN_TIMEOUT, or
daphne's 5 s limit on the application accepting), a TCP error, or a close right after
opening (the project refuses over-cap or Redis-less sockets by accepting and closing with a
code). Handshake p50/p99/max are over the sockets that got in. The server's CPU time per socket
that got in is recorded too (the cost of one handshake), and the kernel's listen-queue overflows
during the run: a server with a short accept backlog (Twisted's default
is 50, asyncio's 100) makes a storm wait for SYN retransmits, 1 s and 3 s later.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from bench.client import Opened, close_all, close_code, is_open, open_many
from bench.procs import CpuMeter, listen_overflows, quiesce
from bench.stats import percentile
from bench.targets import Target

OPEN_TIMEOUT = 30.0
SETTLE = 1.0


async def open_and_settle(target: Target, count: int, concurrency: int) -> dict:
    dialect = target.dialect()
    room = await asyncio.to_thread(target.new_room)
    await asyncio.to_thread(quiesce, target.server_groups())
    overflows = listen_overflows()
    meter = CpuMeter(target.cpu_groups()).start()
    started = time.perf_counter()
    opened: list[Opened] = await open_many(
        dialect, room, count, concurrency=concurrency, enter=False, open_timeout=OPEN_TIMEOUT
    )
    wall = time.perf_counter() - started
    cpu = meter.stop()
    overflows = listen_overflows() - overflows
    await asyncio.sleep(SETTLE)
    causes: Counter[str] = Counter(o.failure for o in opened if o.failure)
    times = []
    sockets = [o.ws for o in opened if o.ws is not None]
    for o in opened:
        if o.ws is None:
            continue
        if is_open(o.ws):
            times.append(o.seconds)
        else:
            causes[close_code(o.ws)] += 1
    await close_all(sockets)
    await asyncio.to_thread(quiesce, target.server_groups())
    return {
        "sockets": count,
        "concurrency": concurrency,
        "in": len(times),
        "refused": count - len(times),
        "causes": dict(causes),
        "wall": round(wall, 3),
        "rate": len(times) / wall if wall > 0 else 0.0,
        "p50": percentile(times, 0.50),
        "p99": percentile(times, 0.99),
        "max": max(times) if times else None,
        "listen_overflows": overflows,
        # CPU time of the server processes (nginx included, if any) per socket that got in.
        "server_cpu_ms": _cpu_ms_per_socket(cpu, wall, len(times)),
    }


def _cpu_ms_per_socket(cpu: dict[str, float], wall: float, sockets: int) -> float | None:
    if not sockets:
        return None
    busy = sum(share for group, share in cpu.items() if group in ("server", "nginx"))
    return busy / 100 * wall / sockets * 1000


async def handshakes(target: Target, count: int, concurrency: int) -> dict:
    return await open_and_settle(target, count, concurrency)


async def storm(target: Target, count: int) -> dict:
    return await open_and_settle(target, count, count)
