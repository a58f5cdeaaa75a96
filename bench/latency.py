"""Latency against offered load: how long a message takes from send to each receiver.

R receivers (100) and one sender share a fresh room. For each offered load L (deliveries a
second, counted at the receivers), the sender sends L / R messages a second on a fixed
schedule, for 5 s at the headline 1,000 deliveries/s and 3 s at the chart's other loads,
after an unrecorded second of warm-up. Each body carries the perf_counter() time it was
due, and each receiver records arrival minus that time (client and sender are one process,
one clock).
Timing from the schedule rather than from the actual write charges a late send to the
latency, so a saturated server cannot hide its queue (no coordinated omission).

Reported per load: p50, p99 and max over every delivery, and the share lost. The sweep goes
up the loads and stops after the first one where the server fell behind (p99 over
SATURATED_P99 or more than 1 % lost), once the 1,000 deliveries/s point is measured.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from websockets.asyncio.client import ClientConnection

from bench.client import (
    Tally,
    close_all,
    drain,
    open_exactly,
    read_into,
    wait_for_deliveries,
)
from bench.procs import quiesce
from bench.stats import percentile
from bench.targets import Target

SATURATED_P99 = 1.0
HEADLINE_LOAD = 1000
WARMUP_SECONDS = 1.0


async def offered(
    target: Target,
    room: str,
    receivers: list[ClientConnection],
    sender: ClientConnection,
    load: int,
    seconds: float,
) -> dict:
    dialect = target.dialect()
    per_second = load / len(receivers)
    count = max(10, round(per_second * seconds))
    marker = f"l{uuid.uuid4().hex[:8]}-"
    tally = Tally(marker, expected=len(receivers) * count, latencies=[], dialect=dialect)
    readers = [asyncio.create_task(read_into(ws, tally)) for ws in receivers]
    drainer = asyncio.create_task(drain(sender))
    try:
        start = time.perf_counter() + 0.05
        for index in range(count):
            due = start + index / per_second
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await sender.send(dialect.send_frame(room, f"{marker}{index} {due:.6f}"))
        await wait_for_deliveries(tally, idle=2.0, within=30.0)
    finally:
        for task in (*readers, drainer):
            task.cancel()
        await asyncio.gather(*readers, drainer, return_exceptions=True)
    samples = tally.latencies or []
    return {
        "load": load,
        "messages": count,
        "expected": tally.expected,
        "delivered": tally.count,
        "lost": 1 - tally.count / tally.expected,
        "p50": percentile(samples, 0.50),
        "p99": percentile(samples, 0.99),
        "max": max(samples) if samples else None,
    }


def saturated(point: dict) -> bool:
    return point["lost"] > 0.01 or not point["p99"] or point["p99"] > SATURATED_P99


async def sweep(
    target: Target, loads: list[int], *, receivers: int, seconds: float, others: float
) -> list[dict]:
    """`seconds` of load at HEADLINE_LOAD (the table's figure), `others` at the other loads
    (the chart's points)."""
    dialect = target.dialect()
    room = await asyncio.to_thread(target.new_room)
    sockets, failures = await open_exactly(dialect, room, receivers + 1, concurrency=100)
    if len(sockets) <= receivers:
        await close_all(sockets)
        raise RuntimeError(f"latency: only {len(sockets)} sockets opened ({failures[:3]})")
    sender = sockets.pop()
    points = []
    try:
        # Not recorded: the first messages on fresh sockets pay for TCP windows and buffers.
        await offered(target, room, sockets, sender, min(loads), WARMUP_SECONDS)
        for load in sorted(loads):
            await asyncio.to_thread(quiesce, target.server_groups())
            duration = seconds if load == HEADLINE_LOAD else others
            point = await offered(target, room, sockets, sender, load, duration)
            points.append(point)
            if saturated(point) and load >= HEADLINE_LOAD:
                break
    finally:
        await close_all([*sockets, sender])
    await asyncio.to_thread(quiesce, target.server_groups())
    return points
