"""Process plumbing for the benchmark: start a command, read its memory and CPU time.

CPU time comes from /proc/<pid>/stat (utime + stime, clock ticks) for every process of a
named group, so a benchmark can say which process was busy while it ran: on a 2-core box
with the client beside the servers, "who ate the CPU" decides what a figure means.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.services.support.common import (
    HOST,
    STOP_TIMEOUT,
    ServiceError,
    free_port,
    stop_process,
    tail,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the name: state(0) ppid(1) pgrp(2) session(3) ... utime(11) stime(12).
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree_pids(root: int) -> list[int]:
    """A process and everything it forked, found by parent pid: a PostgreSQL postmaster and
    its backends (each of which starts a session of its own), an nginx master and workers."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, ()))
    return found


def reap_children(timeout: float = STOP_TIMEOUT) -> list[int]:
    """SIGTERM, then SIGKILL, every process this one started that is still running: the
    last line of defence when an interruption cut a stop short. Returns their pids."""
    me = os.getpid()
    children = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == me and fields[0] != "Z":
                children.append(int(entry.name))
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in children:
        while time.monotonic() < deadline and _alive_child(pid):
            time.sleep(0.1)
        if _alive_child(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return children


def _alive_child(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


def rss_kib(pid: int) -> int:
    """Resident memory of one process (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ServiceError(f"no VmRSS for pid {pid}")


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen queue was full
    (TcpExt ListenOverflows): each costs the client a SYN retransmit, 1 s then 3 s later."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(table.get("ListenOverflows", 0))
    return 0


@dataclass
class CpuGroup:
    """A named set of processes whose CPU time is summed: `pids` as given, or every process
    of the tree under `tree` at the moment of reading (backends come and go)."""

    name: str
    pids: Sequence[int] = ()
    tree: int | None = None
    self_process: bool = False

    def seconds(self) -> float:
        if self.self_process:
            times = os.times()
            return times.user + times.system
        pids: Iterable[int] = self.pids
        if self.tree is not None:
            pids = tree_pids(self.tree)
        return sum(cpu_seconds(pid) for pid in pids)


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (every core, /proc/stat), in seconds."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait.
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS


@dataclass
class CpuMeter:
    """CPU time per group between `start()` and `stop()`, as a share of one core, and
    `rest`: what the rest of the machine used meanwhile (other people's processes, and
    kernel work no process is billed for), so a disturbed measurement shows as one."""

    groups: list[CpuGroup]
    started: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0

    def start(self) -> CpuMeter:
        self.started = {g.name: g.seconds() for g in self.groups}
        self.started["rest"] = machine_busy_seconds()
        self.wall = time.perf_counter()
        return self

    def stop(self) -> dict[str, float]:
        """Percent of one core each group used since start() (200 = both cores of 2)."""
        wall = max(time.perf_counter() - self.wall, 1e-9)
        used = {g.name: g.seconds() - self.started[g.name] for g in self.groups}
        used["rest"] = machine_busy_seconds() - self.started["rest"] - sum(used.values())
        # A backend that exited takes its CPU time along: never below zero.
        return {name: round(max(0.0, 100 * seconds / wall), 1) for name, seconds in used.items()}


def quiesce(groups: list[CpuGroup], *, below: float = 5.0, timeout: float = 20.0) -> float:
    """Wait until the servers are idle (under `below` % of a core over 0.3 s), so work left
    over from one benchmark (closing sockets, leaving groups) is not billed to the next.
    Returns the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        meter = CpuMeter(groups).start()
        time.sleep(0.3)
        used = meter.stop()
        used.pop("rest")
        if sum(used.values()) < below:
            break
    return time.perf_counter() - started


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Process:
    """One server process: a command, its environment, its console in `workdir`."""

    name: str
    args: list[str]
    env: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    ready: Callable[[], bool] | None = None
    start_timeout: float = 45.0
    own_session: bool = False
    proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} not started"
        return self.proc.pid

    @property
    def console(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> Process:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.console.open("ab") as out:
            self.proc = subprocess.Popen(
                [part.replace("{port}", str(self.port)) for part in self.args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=self.own_session,
            )
        ready = self.ready or (lambda: port_accepts(self.port))

        def answers() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited with {self.proc.returncode}")
            return ready()

        try:
            wait_until(answers, timeout=self.start_timeout, what=f"{self.name} on {self.port}")
        except ServiceError as exc:
            self.stop()
            raise ServiceError(f"{exc}\n--- {self.name} ---\n{tail(self.console)}") from None
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=STOP_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL: after the memory benchmark nobody needs 10,000 graceful closes."""
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)

    def output(self) -> str:
        return f"--- {self.name} ---\n{tail(self.console)}"
