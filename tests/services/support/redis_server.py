"""A real redis-server on a free port, started, stopped and restarted by tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.services.support.common import (
    HOST,
    REDIS_START_TIMEOUT,
    STOP_TIMEOUT,
    ServiceError,
    free_port,
    stop_process,
    tail,
    wait_until,
)


def redis_server_binary() -> str:
    """Path of redis-server; the tests need the real one."""
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.access(p, os.X_OK)),
        None,
    )
    if found is None:
        raise ServiceError(
            "redis-server is not installed. `make test` installs it "
            "(apt-get install redis-server), or install it yourself."
        )
    return found


@dataclass
class RedisServer:
    binary: str
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.workdir / "redis.log"

    def start(self) -> RedisServer:
        """Start on self.port (again, after a stop) and wait until PING answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Nothing is persisted: a restart starts empty, as a replaced Redis node would.
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--logfile", "",
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            wait_until(self._ready, timeout=REDIS_START_TIMEOUT, what=f"redis on {self.port}")
        except ServiceError as exc:
            self.stop()
            raise ServiceError(f"{exc}\n--- redis output ---\n{tail(self.log_file)}") from None
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServiceError(
                f"redis-server exited with {self.proc.returncode}\n{tail(self.log_file)}"
            )
        return self.ping()

    def ping(self) -> bool:
        client = redis.Redis(
            host=HOST, port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM, as an orderly shutdown or a failover would; SIGKILL if it lingers."""
        if self.proc is not None:
            stop_process(self.proc, timeout=STOP_TIMEOUT)
