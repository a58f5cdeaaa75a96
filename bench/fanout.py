"""Burst fan-out: how many deliveries a second one room gets out to its members.

R receivers enter one fresh room (the project: `join`; the peers: the room's URL), then one
sender, also a member, writes N messages as fast as the server reads them (the project's
frame rate limit is lifted). Each receiver counts the frames carrying this run's marker.

    deliveries/s = deliveries counted / (last delivery - first send)

Counted, not assumed: a layer that drops messages over its capacity (the tutorial's
RedisChannelLayer keeps 100 per process) is credited only with what arrived, and the run
ends once nothing arrived for IDLE seconds. A run that took under MIN_SECONDS is repeated
with more messages (up to MAX_SCALE times N) so a fast server is timed over seconds, not
milliseconds; the report gives the N each figure used. An unrecorded warm-up burst of N/4
comes first: a fresh connection's TCP windows are still small, and the first burst through
a fresh server process runs measurably slower (the relay: about half as fast). The CPU
each process used during the run is recorded beside the rate: on a shared 2-core box it
tells what limited it.
"""

from __future__ import annotations

import asyncio
import math
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
from bench.procs import CpuMeter, quiesce
from bench.targets import Target

IDLE = 3.0
TIMEOUT = 120.0
MIN_SECONDS = 1.5
TARGET_SECONDS = 3.0
MAX_SCALE = 20
OPEN_CONCURRENCY = 100


async def burst(
    target: Target,
    room: str,
    receivers: list[ClientConnection],
    sender: ClientConnection,
    messages: int,
) -> dict:
    """One burst of `messages` from `sender` to `receivers`, already in `room`."""
    dialect = target.dialect()
    marker = f"b{uuid.uuid4().hex[:8]}-"
    tally = Tally(marker, expected=len(receivers) * messages)
    readers = [asyncio.create_task(read_into(ws, tally)) for ws in receivers]
    drainer = asyncio.create_task(drain(sender))
    frames = [dialect.send_frame(room, f"{marker}{index}") for index in range(messages)]
    meter = CpuMeter(target.cpu_groups()).start()
    started = time.perf_counter()
    try:
        for frame in frames:
            await sender.send(frame)
        sent = time.perf_counter() - started
        await wait_for_deliveries(tally, idle=IDLE, within=TIMEOUT)
    finally:
        cpu = meter.stop()
        for task in (*readers, drainer):
            task.cancel()
        await asyncio.gather(*readers, drainer, return_exceptions=True)
    # Up to the last delivery: the idle wait after a lossy run is not the server's time.
    seconds = (tally.last or time.perf_counter()) - started
    return {
        "receivers": len(receivers),
        "messages": messages,
        "expected": tally.expected,
        "delivered": tally.count,
        "seconds": round(seconds, 3),
        "send_seconds": round(sent, 3),
        "rate": tally.count / seconds if seconds > 0 else 0.0,
        "cpu": cpu,
    }


async def fanout(target: Target, receivers: int, messages: int) -> dict:
    dialect = target.dialect()
    room = await asyncio.to_thread(target.new_room)
    sockets, failures = await open_exactly(
        dialect, room, receivers + 1, concurrency=OPEN_CONCURRENCY
    )
    if len(sockets) <= receivers:
        await close_all(sockets)
        raise RuntimeError(f"fan-out: could not open the sockets ({failures[:3]})")
    sender = sockets.pop()
    try:
        # Not recorded: fresh connections start with small TCP windows, and a server's
        # first burst pays for buffers and code paths it then keeps.
        await burst(target, room, sockets, sender, max(10, messages // 4))
        await asyncio.to_thread(quiesce, target.server_groups())
        result = await burst(target, room, sockets, sender, messages)
        if result["seconds"] < MIN_SECONDS and result["delivered"]:
            scale = min(MAX_SCALE, math.ceil(TARGET_SECONDS / max(result["seconds"], 0.01)))
            await asyncio.to_thread(quiesce, target.server_groups())
            result = await burst(target, room, sockets, sender, messages * scale)
    finally:
        await close_all([*sockets, sender])
    # Refused and opened again: the room still got its R receivers.
    result["open_failures"] = len(failures)
    await asyncio.to_thread(quiesce, target.server_groups())
    return result
