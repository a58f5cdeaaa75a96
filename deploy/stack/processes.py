"""Child processes of the stack: each in a session of its own, bounded waits, ordered stops.

A child runs in its own session, so a Ctrl-C at the terminal reaches the stack alone, which
then stops the children in order; and each child is told (PR_SET_PDEATHSIG) to take SIGTERM
if the stack dies without stopping it (SIGKILL, a crash), so nothing is left running.
SIGINT, SIGTERM and SIGHUP only set a flag (`request_stop`): every wait of the stack checks it
(`checkpoint`), so a stop requested during start-up stops whatever already runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.stack.common import StackError, tail

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_stop_signal: str | None = None


class Exited(StackError):
    """A process of the stack ended when it should be running."""


class Interrupted(Exception):
    """A stop was requested (Ctrl-C, SIGTERM, SIGHUP)."""


def request_stop(signum: int, _frame: Any = None) -> None:
    global _stop_signal
    if _stop_signal is None:
        _stop_signal = signal.Signals(signum).name
    else:
        print(f"({signal.Signals(signum).name}: already stopping, please wait)", flush=True)


def stop_requested() -> str | None:
    return _stop_signal


def checkpoint() -> None:
    """Raise Interrupted once a stop has been requested."""
    if _stop_signal is not None:
        raise Interrupted(_stop_signal)


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1
) -> Any:
    """Poll until `predicate` returns something truthy; StackError after `timeout`,
    Interrupted as soon as a stop is requested."""
    deadline = time.monotonic() + timeout
    while True:
        checkpoint()
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the stack dies (cleared by setuid, so this
    runs after subprocess switched users)."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One process the stack started, its output in `log`."""

    name: str
    log: Path
    proc: subprocess.Popen | None = None
    # Where to look when it fails: its own log files besides `log`.
    other_logs: Sequence[Path] = field(default_factory=tuple)

    def spawn(self, args: Sequence[str], **popen: Any) -> Child:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 (the stack's own fixed commands)
                list(args),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # the stack runs no threads
                **popen,
            )
        return self

    @property
    def started(self) -> subprocess.Popen:
        if self.proc is None:
            raise StackError(f"{self.name} was never started")
        return self.proc

    @property
    def pid(self) -> int:
        return self.started.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self, lines: int = 30) -> str:
        parts = [f"--- {self.log} ---\n{tail(self.log, lines)}"]
        parts += [f"--- {path} ---\n{tail(path, lines)}" for path in self.other_logs]
        return "\n".join(parts)

    def failure(self, what: str) -> StackError:
        return StackError(f"{self.name} {what}\n{self.output()}")

    def check(self) -> None:
        """Exited (with the tail of its logs) if it is no longer running."""
        if self.proc is not None and self.proc.poll() is not None:
            status = self.proc.returncode
            how = (
                f"was killed by {signal.Signals(-status).name}"
                if status < 0
                else f"exited with status {status}"
            )
            raise Exited(f"{self.name} {how}\n{self.output()}")

    def await_ready(self, predicate: Callable[[], Any], *, timeout: float, what: str) -> None:
        """Poll `predicate` while the process runs; StackError with the tail of its logs if it
        exits or `timeout` passes first."""

        def ready() -> Any:
            self.check()
            return predicate()

        try:
            wait_for(ready, timeout=timeout, what=what)
        except Exited:
            raise
        except StackError as exc:
            raise StackError(f"{exc}\n{self.output()}") from None

    def wait(self, *, timeout: float) -> int:
        """Its exit status, for a command that ends by itself; StackError past `timeout`."""
        proc = self.started
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if stop_requested():
                self.stop(timeout=5)
                checkpoint()
            if time.monotonic() > deadline:
                self.stop(timeout=5)
                raise self.failure(f"took more than {timeout:.0f}s")
            time.sleep(0.1)
        return proc.returncode

    def run(self, args: Sequence[str], *, timeout: float, **popen: Any) -> None:
        """Spawn a command and wait until it succeeds; StackError (with its output) if not."""
        status = self.spawn(args, **popen).wait(timeout=timeout)
        if status != 0:
            raise self.failure(f"failed with status {status}")

    def stop(
        self, signals: Sequence[signal.Signals] = (signal.SIGTERM,), *, timeout: float
    ) -> bool:
        """Send each signal in turn, waiting `timeout` after each for the process to exit
        (no signals: only wait, for a process already told to stop); SIGKILL to its whole
        session if it is still there. Whatever else is left in its process group (nginx
        workers, PostgreSQL backends) is killed too. True if it exited on the signals."""
        if self.proc is None:
            return True
        clean = True
        if self.proc.poll() is None:
            clean = False
            for sig in signals or (None,):
                if sig is not None:
                    with contextlib.suppress(ProcessLookupError):
                        self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    continue
                clean = True
                break
        if not clean:
            print(f"{self.name} did not stop within {timeout:.0f}s: killed", flush=True)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout)
        return clean
