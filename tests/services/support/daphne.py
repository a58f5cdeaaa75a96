"""A real daphne process running the project, as `manage.py serve` starts it, or as plain
`python -m daphne` runs it when deployed without the project's wrapper."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.services.support.api import http_request
from tests.services.support.common import (
    HOST,
    PYTHON,
    ROOT,
    SERVER_START_TIMEOUT,
    STOP_TIMEOUT,
    ChatEndpoint,
    ServiceError,
    free_port,
    stop_process,
    tail,
    wait_until,
)

# How a Server runs the project: "serve" is `manage.py serve` (the project's caps, graceful
# SIGTERM); "daphne" is `python -m daphne ... config.asgi:application` with daphne's defaults.
RUNNERS = ("serve", "daphne")


@dataclass
class Server(ChatEndpoint):
    """One daphne process running the project, started the way `runner` names."""

    name: str
    env: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    # As deploy/chat@.service runs it behind nginx: the client address is X-Forwarded-For's.
    proxy_headers: bool = False
    runner: str = "serve"
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        if self.runner not in RUNNERS:
            raise ValueError(f"runner must be one of {RUNNERS}, not {self.runner!r}")

    @property
    def log_file(self) -> Path:
        return Path(self.env["LOG_FILE"])

    @property
    def stdout_file(self) -> Path:
        return self.workdir / "stdout.log"

    @property
    def stderr_file(self) -> Path:
        return self.workdir / "stderr.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    def command(self) -> list[str]:
        if self.runner == "daphne":
            # Exactly as a deployment without the wrapper runs it; same environment.
            args = [PYTHON, "-m", "daphne", "-b", HOST, "-p", str(self.port)]
            if self.proxy_headers:
                args.append("--proxy-headers")
            return [*args, "config.asgi:application"]
        args = [PYTHON, "manage.py", "serve", "--bind", HOST, "--port", str(self.port)]
        if self.proxy_headers:
            args.append("--proxy-headers")
        return args

    def start(self) -> Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = self.command()
        with self.stdout_file.open("ab") as out, self.stderr_file.open("ab") as err:
            self.proc = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )
        try:
            wait_until(self._answers, timeout=SERVER_START_TIMEOUT, what=f"{self.name} /healthz")
        except ServiceError as exc:
            self.stop()
            raise ServiceError(f"{exc}\n{self.output()}") from None
        return self

    def _answers(self) -> bool:
        if not self.alive():
            raise ServiceError(f"{self.name} exited with {self.proc.returncode}")
        try:
            # 503 counts: the process serves, whatever its backends say.
            http_request("GET", f"{self.base_url}/healthz", timeout=2)
        except OSError:
            return False
        return True

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=STOP_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL: no close frames, no cleanup, as when the kernel's OOM killer strikes."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT)

    def output(self) -> str:
        return (
            f"--- {self.name} stderr ---\n{tail(self.stderr_file)}\n"
            f"--- {self.name} stdout ---\n{tail(self.stdout_file, 10)}"
        )

    def log_records(self) -> list[dict[str, Any]]:
        """The LOG_FILE's records; every line must be one JSON object."""
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line]

    def all_output(self) -> str:
        """Everything the process wrote anywhere: log file, console and access log."""
        return "".join(
            p.read_text(errors="replace")
            for p in (self.log_file, self.stdout_file, self.stderr_file)
            if p.exists()
        )
