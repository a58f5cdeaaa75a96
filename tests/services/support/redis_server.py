"""Real redis-server processes on free ports, started, stopped and restarted by tests: plain,
TLS only (`RedisTls`), replicas, and Redis Sentinel (`SentinelServer`, the same binary)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from deploy.stack.services import find_redis_server
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
from tests.services.support.tls import Issued


def redis_server_binary() -> str:
    """Path of redis-server; the tests need the real one."""
    found = find_redis_server()
    if found is None:
        raise ServiceError(
            "redis-server is not installed. `make test` installs it "
            "(apt-get install redis-server), or install it yourself."
        )
    return found


@dataclass(frozen=True)
class RedisTls:
    """Files for a redis-server that speaks TLS only, and how a client reaches it."""

    ca_file: Path
    server: Issued
    # When set, clients must present a certificate signed by ca_file (mutual TLS): this one.
    client: Issued | None = None

    def args(self) -> list[str]:
        return [
            "--tls-cert-file", str(self.server.cert_file),
            "--tls-key-file", str(self.server.key_file),
            "--tls-ca-cert-file", str(self.ca_file),
            "--tls-auth-clients", "yes" if self.client else "no",
        ]  # fmt: skip

    def client_options(self) -> dict[str, Any]:
        """redis-py's arguments for a client that trusts ca_file (and presents `client`)."""
        options: dict[str, Any] = {
            "ssl": True,
            "ssl_ca_certs": str(self.ca_file),
            # The fixture's own client reaches a server whatever name its certificate bears
            # (a test may give it the wrong one); the project's clients are the ones tested.
            "ssl_check_hostname": False,
        }
        if self.client is not None:
            options["ssl_certfile"] = str(self.client.cert_file)
            options["ssl_keyfile"] = str(self.client.key_file)
        return options


@dataclass
class RedisServer:
    binary: str
    workdir: Path
    port: int = field(default_factory=free_port)
    # TLS on `port` and no plain port at all: nothing can reach this Redis unencrypted.
    tls: RedisTls | None = None
    # More redis-server arguments (e.g. --replicaof HOST PORT).
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{HOST}:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.workdir / "redis.log"

    def start(self) -> RedisServer:
        """Start on self.port (again, after a stop) and wait until PING answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        ports = ["--port", str(self.port)]
        if self.tls is not None:
            ports = ["--port", "0", "--tls-port", str(self.port), *self.tls.args()]
        # Nothing is persisted: a restart starts empty, as a replaced Redis node would.
        args = [
            self.binary,
            *ports,
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--logfile", "",
            *self.extra_args,
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

    def client(self, **kwargs: Any) -> redis.Redis:
        """A redis-py client of this server (TLS when it speaks TLS); close it after use."""
        options = {"socket_connect_timeout": 2, "socket_timeout": 5, **kwargs}
        if self.tls is not None:
            options.update(self.tls.client_options())
        return redis.Redis(host=HOST, port=self.port, **options)

    def ping(self) -> bool:
        client = self.client(socket_connect_timeout=0.5, socket_timeout=0.5)
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


@dataclass
class SentinelServer:
    """`redis-server sentinel.conf --sentinel`, monitoring masters on HOST by name, alone (a
    quorum of 1) and quick to act (1 s to judge a master down)."""

    binary: str
    workdir: Path
    # Master name -> port of the redis-server on HOST it monitors.
    masters: dict[str, int]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "sentinel.log"

    def start(self) -> SentinelServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Sentinel rewrites its configuration file as it learns; it must be its own.
        config = self.workdir / "sentinel.conf"
        lines = [f"port {self.port}", f"bind {HOST}", f'dir "{self.workdir}"', 'logfile ""']
        for name, port in self.masters.items():
            lines += [
                f"sentinel monitor {name} {HOST} {port} 1",
                f"sentinel down-after-milliseconds {name} 1000",
                f"sentinel failover-timeout {name} 10000",
            ]
        config.write_text("\n".join(lines) + "\n")
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, str(config), "--sentinel"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            wait_until(self._ready, timeout=REDIS_START_TIMEOUT, what=f"sentinel on {self.port}")
        except ServiceError as exc:
            self.stop()
            raise ServiceError(f"{exc}\n--- sentinel output ---\n{tail(self.log_file)}") from None
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServiceError(
                f"sentinel exited with {self.proc.returncode}\n{tail(self.log_file)}"
            )
        try:
            return all(self.master_port(name) is not None for name in self.masters)
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_connect_timeout=1, socket_timeout=5)

    def master_port(self, name: str) -> int | None:
        """The port of the master the sentinel names for `name` now."""
        client = self.client()
        try:
            address = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
        finally:
            client.close()
        return None if address is None else int(address[1])

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=STOP_TIMEOUT)
