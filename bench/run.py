"""Benchmarks against real redis-server and daphne processes; prints numbers, asserts nothing.

    python -m bench.run storm  [--sockets 1000] [--processes 2] [--pool 100]
    python -m bench.run fanout [--receivers 200] [--senders 10] [--messages 20] [--processes 2]

`make bench` runs both with their defaults. Each run starts its own Redis and daphne
processes on free 127.0.0.1 ports (the same way the tier-2 tests do), and the client runs in
this process, so on a small machine the client competes with the servers for CPU: the
numbers are a floor for the servers, not a ceiling.

storm:  N sockets open at once (header auth), then each joins one room. Reports handshake
        failures by cause, handshake and join latency percentiles, wall time until all
        joined, and the servers' resident memory per socket.
fanout: R receivers in one room spread over the processes, S senders each sending M
        messages as fast as the per-socket rate limit allows (its burst). Reports
        deliveries per second and end-to-end latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.services.support.api import Account, Api
from tests.services.support.common import migrated_environment
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer, redis_server_binary
from tests.services.support.sockets import join, ws_connect

# Each socket holds one file descriptor on both sides; leave room for the rest.
FD_HEADROOM = 256


def percentiles(samples: list[float]) -> str:
    if not samples:
        return "n/a"
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"p50 {at(0.50):.1f} ms  p95 {at(0.95):.1f} ms  p99 {at(0.99):.1f} ms  "
        f"max {ordered[-1] * 1000:.1f} ms"
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


@contextmanager
def cluster(processes: int, **env: str) -> Iterator[tuple[RedisServer, list[Server]]]:
    """A Redis and `processes` daphne workers sharing one migrated SQLite database."""
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as tmp:
        workdir = Path(tmp)
        base_env = migrated_environment(workdir)
        redis_server = RedisServer(binary=redis_server_binary(), workdir=workdir / "redis")
        servers: list[Server] = []
        try:
            redis_server.start()
            for index in range(processes):
                name = f"daphne{index}"
                server_env = dict(
                    base_env,
                    REDIS_URL=redis_server.url,
                    VAR_DIR=str(workdir / name / "var"),
                    LOG_FILE=str(workdir / name / "realtime.log"),
                    LOG_LEVEL="WARNING",
                    **env,
                )
                servers.append(Server(name=name, env=server_env, workdir=workdir / name).start())
            yield redis_server, servers
        finally:
            for server in servers:
                server.stop()
            redis_server.stop()


def account_and_room(server: Server) -> tuple[Account, str]:
    api = Api(server)
    account = api.account("bench")
    return account, api.room(account, prefix="bench")


async def storm(args: argparse.Namespace) -> None:
    with cluster(args.processes, REDIS_POOL_MAX_CONNECTIONS=str(args.pool)) as (_, servers):
        account, room = account_and_room(servers[0])
        before = {server.name: rss_mib(server.pid) for server in servers}
        handshakes: list[float] = []
        joins: list[float] = []
        failures: Counter[str] = Counter()
        sockets = []

        async def one(index: int) -> None:
            server = servers[index % len(servers)]
            started = time.perf_counter()
            try:
                ws = await ws_connect(server, token=account.access, open_timeout=60)
            except InvalidStatus as exc:
                failures[f"HTTP {exc.response.status_code}"] += 1
                return
            except (OSError, TimeoutError) as exc:
                failures[type(exc).__name__] += 1
                return
            opened = time.perf_counter()
            handshakes.append(opened - started)
            sockets.append(ws)
            try:
                await join(ws, room, within=60)
            except ConnectionClosed as exc:
                failures[f"closed {exc.rcvd.code if exc.rcvd else 1006}"] += 1
                return
            except (AssertionError, TimeoutError) as exc:
                failures[f"join {type(exc).__name__}"] += 1
                return
            joins.append(time.perf_counter() - opened)

        wall = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(args.sockets)))
        wall = time.perf_counter() - wall
        after = {server.name: rss_mib(server.pid) for server in servers}
        for ws in sockets:
            await ws.close()

    per_process = args.sockets / len(servers)
    print(f"storm: {args.sockets} sockets at once over {len(servers)} daphne processes")
    print(f"  channel-layer pool per process: {args.pool} connections")
    print(f"  joined: {len(joins)}/{args.sockets} in {wall:.2f} s wall")
    print(f"  failures: {dict(failures) or 'none'}")
    print(f"  handshake: {percentiles(handshakes)}")
    print(f"  join:      {percentiles(joins)}")
    for name in before:
        grown = after[name] - before[name]
        print(
            f"  {name} RSS: {before[name]:.1f} -> {after[name]:.1f} MiB "
            f"({grown * 1024 / per_process:.1f} KiB per socket)"
        )


async def fanout(args: argparse.Namespace) -> None:
    with cluster(args.processes) as (_, servers):
        account, room = account_and_room(servers[0])
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        expected = args.senders * args.messages * args.receivers
        done = asyncio.Event()
        arrived = 0
        last_arrival = 0.0

        async def receive(ws) -> None:
            nonlocal arrived, last_arrival
            async for raw in ws:
                frame = json.loads(raw)
                if frame["type"] == "message" and frame["body"] in sent_at:
                    last_arrival = time.perf_counter()
                    latencies.append(last_arrival - sent_at[frame["body"]])
                    arrived += 1
                    if arrived == expected:
                        done.set()

        receivers = []
        for index in range(args.receivers):
            ws = await ws_connect(servers[index % len(servers)], token=account.access)
            await join(ws, room)
            receivers.append(ws)
        senders = []
        for index in range(args.senders):
            ws = await ws_connect(servers[index % len(servers)], token=account.access)
            await join(ws, room)
            senders.append(ws)
        tasks = [asyncio.create_task(receive(ws)) for ws in receivers]

        started = time.perf_counter()
        for number in range(args.messages):
            for index, ws in enumerate(senders):
                body = f"bench {index}-{number}"
                sent_at[body] = time.perf_counter()
                await ws.send(json.dumps({"type": "send", "room": room, "body": body}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=args.timeout)
        # Up to the last delivery: a run that lost messages must not count its wait.
        elapsed = (last_arrival or time.perf_counter()) - started
        for task in tasks:
            task.cancel()
        for ws in receivers + senders:
            await ws.close()

    messages = args.senders * args.messages
    print(
        f"fanout: {messages} messages from {args.senders} senders to {args.receivers} receivers "
        f"over {len(servers)} daphne processes"
    )
    print(f"  delivered: {arrived}/{expected} in {elapsed:.2f} s")
    print(f"  throughput: {arrived / elapsed:.0f} deliveries/s")
    print(f"  latency (send to receive): {percentiles(latencies)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    storm_args = commands.add_parser("storm", help="a burst of simultaneous connections")
    storm_args.add_argument("--sockets", type=int, default=1000)
    storm_args.add_argument("--processes", type=int, default=2)
    storm_args.add_argument("--pool", type=int, default=100, help="REDIS_POOL_MAX_CONNECTIONS")
    fanout_args = commands.add_parser("fanout", help="one room, many receivers")
    fanout_args.add_argument("--receivers", type=int, default=200)
    fanout_args.add_argument("--senders", type=int, default=10)
    # The per-socket burst is 20 frames; more per sender would measure the rate limiter.
    fanout_args.add_argument("--messages", type=int, default=20)
    fanout_args.add_argument("--processes", type=int, default=2)
    fanout_args.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = getattr(args, "sockets", getattr(args, "receivers", 0)) * 2 + FD_HEADROOM
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    print(f"machine: {machine()}")
    asyncio.run(storm(args) if args.command == "storm" else fanout(args))


if __name__ == "__main__":
    main()
