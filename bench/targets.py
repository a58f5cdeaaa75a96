"""The servers under test and the services they share, each started on free 127.0.0.1 ports.

One Stack per run: a redis-server (the channel layer of every server but the relay) and a
PostgreSQL (the project's database, migrated once), both from tests/services/support, plus
one account whose long-lived access token every project socket presents.

Five targets, each started fresh for its turn in a round and stopped after it:

  project         `manage.py serve`, production settings, one process, reached directly
  project-nginx   two `manage.py serve --proxy-headers` processes behind the shipped nginx
  tutorial-core   the Channels tutorial chat, `python -m daphne`, RedisChannelLayer
  tutorial-pubsub the same on RedisPubSubChannelLayer
  relay           a bare `websockets` broadcast server (the floor)

The project runs as deployed except for what one benchmark client needs lifted: the frame
rate limit, the per-user and per-address socket caps, the REST throttles and room quota
(it creates a room per benchmark), and the access token's 5-minute life.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench.client import Dialect
from bench.nginx import SiteNginx
from bench.procs import CpuGroup, Process
from tests.services.support.api import Account, Api
from tests.services.support.common import HOST, PYTHON, base_environment, migrate
from tests.services.support.daphne import Server
from tests.services.support.postgres import PostgresServer, postgres_bin_dir
from tests.services.support.redis_server import RedisServer, redis_server_binary

# "Lifted": far above anything one benchmark run reaches.
UNLIMITED = "1000000"
# The names the command line and the report use, in the report's row order.
TARGETS = ("project", "project-nginx", "tutorial-core", "tutorial-pubsub", "relay")
LABELS = {
    "project": "project, 1 process",
    "project-nginx": "project, 2 processes + nginx",
    "tutorial-core": "tutorial, RedisChannelLayer",
    "tutorial-pubsub": "tutorial, RedisPubSubChannelLayer",
    "relay": "bare websockets relay",
}


@dataclass
class Stack:
    """Redis and PostgreSQL for the whole run, and the project's environment."""

    workdir: Path
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(50))
    redis: RedisServer | None = None
    postgres: PostgresServer | None = None
    account: Account | None = None

    def start(self) -> Stack:
        self.redis = RedisServer(binary=redis_server_binary(), workdir=self.workdir / "redis")
        self.redis.start()
        self.postgres = PostgresServer(bin_dir=postgres_bin_dir(), workdir=self.workdir / "pg")
        self.postgres.start()
        migrate(self.project_env("migrate"))
        return self

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.remove()

    def flush_redis(self) -> None:
        """Between targets: no group, socket count or presence of one leaks into the next."""
        assert self.redis is not None
        client = redis.Redis(host=HOST, port=self.redis.port)
        try:
            client.flushall()
        finally:
            client.close()

    def project_env(self, name: str) -> dict[str, str]:
        assert self.redis is not None
        assert self.postgres is not None
        env = base_environment()
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.production",
            SECRET_KEY=self.secret,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            REDIS_URL=self.redis.url,
            DATABASE_URL=self.postgres.url,
            # TLS ends at nginx in production; the bench speaks plain HTTP on loopback.
            SECURE_SSL_REDIRECT="false",
            # Browsers only; the bench is a native client (header auth, no Origin).
            WS_ALLOWED_ORIGINS=f"http://{HOST}",
            WS_RATE_BURST=UNLIMITED,
            WS_RATE_PER_SECOND=UNLIMITED,
            WS_MAX_CONNECTIONS_PER_USER=UNLIMITED,
            WS_MAX_CONNECTIONS_PER_ADDRESS=UNLIMITED,
            THROTTLE_LOGIN=f"{UNLIMITED}/min",
            THROTTLE_REGISTER=f"{UNLIMITED}/min",
            THROTTLE_TICKET=f"{UNLIMITED}/min",
            THROTTLE_ROOM_CREATE=f"{UNLIMITED}/min",
            ROOMS_MAX_OWNED_PER_USER=UNLIMITED,
            # One token serves the whole run (a socket lives no longer than its token).
            JWT_ACCESS_SECONDS=str(24 * 3600),
            LOG_LEVEL="WARNING",
            LOG_FORMAT="json",
            VAR_DIR=str(self.workdir / name / "var"),
            LOG_FILE=str(self.workdir / name / "realtime.log"),
        )
        return env


class Target:
    """One server under test: start, stop, how to speak to it, which processes it is."""

    name: str
    processes: int = 1
    # Whether sockets authenticate (the project) or just connect (the peers).
    authenticated: bool = False

    def __init__(self, stack: Stack, workdir: Path) -> None:
        self.stack = stack
        self.workdir = workdir

    @property
    def label(self) -> str:
        return LABELS[self.name]

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        """Stop without closing 10,000 sockets gracefully (after the memory benchmark)."""
        self.stop()

    def dialect(self) -> Dialect:
        raise NotImplementedError

    def new_room(self) -> str:
        # \w+ only: the tutorial's route is ws/chat/(?P<room_name>\w+)/.
        return f"bench_{uuid.uuid4().hex[:10]}"

    def server_pids(self) -> list[int]:
        raise NotImplementedError

    def cpu_groups(self) -> list[CpuGroup]:
        """Everything on the box that works for this target, the client included."""
        assert self.stack.redis is not None
        assert self.stack.postgres is not None
        assert self.stack.redis.proc is not None
        assert self.stack.postgres.proc is not None
        return [
            CpuGroup("client", self_process=True),
            CpuGroup("server", pids=self.server_pids()),
            CpuGroup("redis", pids=[self.stack.redis.proc.pid]),
            CpuGroup("postgres", tree=self.stack.postgres.proc.pid),
        ]

    def server_groups(self) -> list[CpuGroup]:
        """The groups that must be idle before a measurement starts (all but the client)."""
        return [g for g in self.cpu_groups() if g.name != "client"]


class _ApiEndpoint:
    """What tests.services.support.api.Api needs of a server: its base URL and output."""

    def __init__(self, base_url: str, output: str = "") -> None:
        self.base_url = base_url
        self._output = output

    def output(self) -> str:
        return self._output


class ProjectTarget(Target):
    """`manage.py serve` with production settings: one process, or two behind nginx."""

    authenticated = True

    def __init__(self, stack: Stack, workdir: Path, *, behind_nginx: bool) -> None:
        super().__init__(stack, workdir)
        self.behind_nginx = behind_nginx
        self.name = "project-nginx" if behind_nginx else "project"
        self.processes = 2 if behind_nginx else 1
        self.servers: list[Server] = []
        self.nginx: SiteNginx | None = None

    def start(self) -> None:
        for index in range(self.processes):
            name = f"{self.name}-{index}"
            server = Server(
                name=name,
                env=self.stack.project_env(name),
                workdir=self.workdir / name,
                proxy_headers=self.behind_nginx,
                runner="serve",
            )
            # Appended before start: a failed start is still stopped by stop().
            self.servers.append(server)
            server.start()
        if self.behind_nginx:
            self.nginx = SiteNginx(self.workdir / "nginx", [s.port for s in self.servers])
            self.nginx.start()
        if self.stack.account is None:
            self.stack.account = self.api().account("bench")

    def api(self) -> Api:
        endpoint = self.nginx or self.servers[0]
        return Api(_ApiEndpoint(endpoint.base_url, self.servers[0].output()))  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        return (self.nginx or self.servers[0]).base_url

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for server in self.servers:
            server.stop()
        self.servers, self.nginx = [], None

    def kill(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for server in self.servers:
            if server.alive():
                server.kill()
        self.servers, self.nginx = [], None

    def dialect(self) -> Dialect:
        assert self.stack.account is not None
        return Dialect(
            "chat", self.base_url.replace("http://", "ws://"), token=self.stack.account.access
        )

    def new_room(self) -> str:
        assert self.stack.account is not None
        return self.api().room(self.stack.account, prefix="bench")

    def server_pids(self) -> list[int]:
        return [server.pid for server in self.servers]

    def cpu_groups(self) -> list[CpuGroup]:
        groups = super().cpu_groups()
        if self.nginx is not None and self.nginx.process is not None:
            groups.append(CpuGroup("nginx", tree=self.nginx.process.pid))
        return groups


class PeerTarget(Target):
    """A peer server run as one process: the tutorial on a layer, or the relay."""

    def __init__(self, stack: Stack, workdir: Path, name: str) -> None:
        super().__init__(stack, workdir)
        self.name = name
        self.process: Process | None = None

    def command(self) -> tuple[list[str], dict[str, str]]:
        assert self.stack.redis is not None
        env = base_environment()
        if self.name == "relay":
            return [PYTHON, "-m", "bench.peers.relay", "--port", "{port}"], env
        env.update(
            DJANGO_SETTINGS_MODULE="bench.peers.tutorial.settings",
            TUTORIAL_LAYER=self.name.removeprefix("tutorial-"),
            REDIS_URL=self.stack.redis.url,
        )
        # As the tutorial's readers run it: daphne's command line and its defaults.
        args = [PYTHON, "-m", "daphne", "-b", HOST, "-p", "{port}"]
        return [*args, "bench.peers.tutorial.asgi:application"], env

    def start(self) -> None:
        args, env = self.command()
        # daphne listens only once the application imported: an open port means ready.
        self.process = Process(name=self.name, args=args, env=env, workdir=self.workdir)
        self.process.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
        self.process = None

    def dialect(self) -> Dialect:
        assert self.process is not None
        base = f"ws://{HOST}:{self.process.port}"
        if self.name == "relay":
            return Dialect("simple", base, path="/{room}")
        # AllowedHostsOriginValidator: the Origin a page served by this host would send.
        return Dialect("simple", base, origin=f"http://{HOST}:{self.process.port}")

    def server_pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid]


def make_target(name: str, stack: Stack, workdir: Path) -> Target:
    if name == "project":
        return ProjectTarget(stack, workdir / name, behind_nginx=False)
    if name == "project-nginx":
        return ProjectTarget(stack, workdir / name, behind_nginx=True)
    if name in TARGETS:
        return PeerTarget(stack, workdir / name, name)
    raise ValueError(f"unknown target {name!r}; one of {', '.join(TARGETS)}")
