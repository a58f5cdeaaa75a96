"""`make stack`: the production topology on this machine, in the foreground, until Ctrl-C.

    python -m deploy.stack [--port 8443] [--temp] [--dir var/stack] [--http-port N]
                           [--daphne-ports A,B] [--redis-port N] [--postgres-port N]

Every option has an environment variable (STACK_PORT, STACK_TEMP=1, STACK_DIR,
STACK_HTTP_PORT, STACK_DAPHNE_PORTS, STACK_REDIS_PORT, STACK_POSTGRES_PORT); a port left out
is a free one, except the HTTPS port: 8443. Everything listens on 127.0.0.1 only.

In order: PostgreSQL (its data directory in STACK_DIR/postgres, kept between runs; with
STACK_TEMP=1 a throwaway one in a temporary directory), redis-server, `migrate`, `seed_demo`
(demo users on an empty database), `collectstatic` into STACK_DIR/static, two daphne
processes (`manage.py serve --proxy-headers`, config.settings.production), then nginx with
deploy/nginx/chat.conf rendered for these ports and paths (deploy.stack.nginx), terminating
TLS with a self-signed certificate for 127.0.0.1 and localhost. Ctrl-C, SIGTERM or SIGHUP
stops nginx, daphne, redis and PostgreSQL, in that order; the exit status is 0 when each
stopped by itself. If any of them exits while the stack runs, the stack names it, shows
the tail of its log, stops the others and exits with 1.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import secrets
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from deploy.stack.common import HOST, ROOT, StackError, free_port, port_is_free
from deploy.stack.nginx import DEPLOY_NGINX, Site, nginx_binary
from deploy.stack.processes import (
    Child,
    Interrupted,
    checkpoint,
    request_stop,
    wait_for,
)
from deploy.stack.services import (
    DAPHNE_START_TIMEOUT,
    Daphne,
    Nginx,
    Postgres,
    Redis,
    manage,
    postgres_bin_dir,
    postgres_user,
    redis_server_binary,
    temporary_basedir,
)

DEFAULT_PORT = 8443
MIGRATE_TIMEOUT = 180.0
COLLECTSTATIC_TIMEOUT = 120.0
SEED_TIMEOUT = 60.0
CERTIFICATE_NAMES = ("localhost", HOST)
# The self-signed certificate is kept between runs (so a browser's exception for it holds),
# and replaced when it has less than a day left.
CERTIFICATE_DAYS = 365
# PostgreSQL connections pooled per daphne process, as deploy/env.example sets them.
POOL_MAX_SIZE = "20"


@dataclass(frozen=True)
class Options:
    port: int
    http_port: int
    daphne_ports: tuple[int, int]
    redis_port: int
    postgres_port: int
    directory: Path
    temp: bool


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return port


def _ports(text: str) -> tuple[int, int]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"two ports, comma-separated, not {text!r}")
    return _port(parts[0]), _port(parts[1])


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def parse_options(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Options:
    environ = dict(os.environ if environ is None else environ)
    parser = argparse.ArgumentParser(
        prog="make stack",
        description="Run the production topology (nginx with TLS, two daphne processes, "
        "redis-server, PostgreSQL) on 127.0.0.1 in the foreground; Ctrl-C stops it.",
    )

    def env_default(name: str, convert: Callable[[str], object]) -> object:
        if not environ.get(name):
            return None
        try:
            return convert(environ[name])
        except argparse.ArgumentTypeError as exc:
            parser.error(f"{name}: {exc}")

    parser.add_argument(
        "--port",
        type=_port,
        default=env_default("STACK_PORT", _port) or DEFAULT_PORT,
        help=f"HTTPS port of nginx (STACK_PORT, default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--http-port",
        type=_port,
        default=env_default("STACK_HTTP_PORT", _port),
        help="plain-HTTP port of nginx: /healthz and the redirect (STACK_HTTP_PORT; free)",
    )
    parser.add_argument(
        "--daphne-ports",
        type=_ports,
        default=env_default("STACK_DAPHNE_PORTS", _ports),
        help="the two daphne ports, A,B (STACK_DAPHNE_PORTS; free)",
    )
    parser.add_argument(
        "--redis-port",
        type=_port,
        default=env_default("STACK_REDIS_PORT", _port),
        help="(STACK_REDIS_PORT; free)",
    )
    parser.add_argument(
        "--postgres-port",
        type=_port,
        default=env_default("STACK_POSTGRES_PORT", _port),
        help="(STACK_POSTGRES_PORT; free)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(environ.get("STACK_DIR") or ROOT / "var" / "stack"),
        help="state: keys, certificate, logs, collected static files, the database "
        "(STACK_DIR, default var/stack)",
    )
    parser.add_argument(
        "--temp",
        action="store_true",
        default=_flag(environ.get("STACK_TEMP", "")),
        help="a throwaway database in a temporary directory, removed on exit (STACK_TEMP=1)",
    )
    args = parser.parse_args(argv)
    taken: set[int] = {args.port}

    def pick(port: int | None) -> int:
        while port is None or (port in taken and port != args.port):
            port = free_port()
        taken.add(port)
        return port

    http_port = pick(args.http_port)
    daphne = args.daphne_ports or (None, None)
    options = Options(
        port=args.port,
        http_port=http_port,
        daphne_ports=(pick(daphne[0]), pick(daphne[1])),
        redis_port=pick(args.redis_port),
        postgres_port=pick(args.postgres_port),
        directory=args.dir.resolve(),
        temp=args.temp,
    )
    ports = [
        options.port,
        options.http_port,
        *options.daphne_ports,
        options.redis_port,
        options.postgres_port,
    ]
    if len(set(ports)) != len(ports):
        parser.error(f"every port must be different: {ports}")
    return options


def _shown(path: Path) -> str:
    """A path relative to the current directory when it is under it."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read, from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with open(fd, "w") as file:
        file.write(text)


def _secret(path: Path, make: Callable[[], str]) -> str:
    """The value kept in `path` (0600), made and written on first use."""
    if not path.exists():
        _write_private(path, make() + "\n")
    return path.read_text().strip()


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One stack per state directory: a second one would find its database locked."""
    with (directory / ".lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise StackError(
                f"another `make stack` (pid {lock.read().strip() or '?'}) is running on "
                f"{directory}; stop it first, or give this one another STACK_DIR"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield


class Stack:
    """The processes of one run, started in order and stopped in reverse."""

    def __init__(self, options: Options, out: TextIO = sys.stdout) -> None:
        self.options = options
        self.out = out
        self.dir = options.directory
        self.log_dir = self.dir / "log"
        self.static_root = self.dir / "static"
        self.temp_basedir: Path | None = None
        self.postgres: Postgres | None = None
        self.redis: Redis | None = None
        self.daphnes: list[Daphne] = []
        self.nginx: Nginx | None = None
        self.commands: list[Child] = []

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    @property
    def base_url(self) -> str:
        return f"https://{HOST}:{self.options.port}"

    @property
    def state_file(self) -> Path:
        return self.dir / "stack.json"

    # --- start -----------------------------------------------------------------------------

    def preflight(self) -> tuple[Path, str, str]:
        """Binaries and ports, before anything starts."""
        binaries = (postgres_bin_dir(), redis_server_binary(), nginx_binary())
        options = self.options
        named = {
            "STACK_PORT (HTTPS)": options.port,
            "STACK_HTTP_PORT": options.http_port,
            "STACK_DAPHNE_PORTS (first)": options.daphne_ports[0],
            "STACK_DAPHNE_PORTS (second)": options.daphne_ports[1],
            "STACK_REDIS_PORT": options.redis_port,
            "STACK_POSTGRES_PORT": options.postgres_port,
        }
        for name, port in named.items():
            if not port_is_free(port):
                raise StackError(
                    f"port {port} on {HOST} ({name}) is in use: stop what listens there, "
                    "or choose another port"
                )
        return binaries

    @property
    def env_file(self) -> Path:
        return self.dir / "env"

    def django_env(self, postgres: Postgres, redis_url: str) -> dict[str, str]:
        """What the daphne processes and management commands run with: the environment of
        `make stack`, and what the stack sets (also written to STACK_DIR/env, in the format
        of /etc/chat/env, for running manage.py against the stack)."""
        origins = ",".join(f"https://{host}:{self.options.port}" for host in CERTIFICATE_NAMES)
        stack = dict(
            DJANGO_SETTINGS_MODULE="config.settings.production",
            SECRET_KEY=_secret(self.dir / "secret-key", lambda: secrets.token_urlsafe(50)),
            ALLOWED_HOSTS=",".join(CERTIFICATE_NAMES[::-1]),
            CSRF_TRUSTED_ORIGINS=origins,
            WS_ALLOWED_ORIGINS=origins,
            REDIS_URL=redis_url,
            DATABASE_URL=postgres.url,
            DATABASE_POOL_MAX_SIZE=POOL_MAX_SIZE,
            STATIC_ROOT=str(self.static_root),
            VAR_DIR=str(self.dir),
            LOG_FILE=str(self.log_dir / "realtime-manage.log"),
            LOG_FORMAT="json",
            # HSTS is per host name, whatever the port: a year of it for localhost would send
            # every http://localhost:<port> this browser opens (`make run` on 8000) to https.
            SECURE_HSTS_SECONDS="0",
        )
        header = "# Written by `make stack` for its current run (the ports change with each run)."
        values = [f"{name}={shlex.quote(value)}" for name, value in stack.items()]
        _write_private(self.env_file, "\n".join([header, *values]) + "\n")
        return {**os.environ, **stack, "PYTHONUNBUFFERED": "1"}

    def _postgres(self, bin_dir: Path) -> Postgres:
        if self.options.temp:
            self.temp_basedir = temporary_basedir(postgres_user())
            basedir = self.temp_basedir
            passwords = {"admin": secrets.token_urlsafe(24), "chat": secrets.token_urlsafe(24)}
        else:
            basedir = self.dir / "postgres"
            stored = _secret(
                self.dir / "postgres-passwords.json",
                lambda: json.dumps(
                    {"admin": secrets.token_urlsafe(24), "chat": secrets.token_urlsafe(24)}
                ),
            )
            passwords = json.loads(stored)
        return Postgres(
            bin_dir=bin_dir,
            basedir=basedir,
            port=self.options.postgres_port,
            log=self.log_dir / "postgres.log",
            password=passwords["chat"],
            admin_password=passwords["admin"],
            durable=not self.options.temp,
        )

    def manage(self, name: str, *args: str, env: dict[str, str]) -> Child:
        child = Child(f"manage.py {name}", self.log_dir / f"{name}.log")
        self.commands.append(child)
        child.log.unlink(missing_ok=True)
        # Readable by this user only: seed_demo prints the demo passwords into it.
        child.log.touch(mode=0o600)
        return child.spawn(manage(name, *args), cwd=ROOT, env=env)

    def start(self) -> None:
        options = self.options
        for directory in (self.dir, self.log_dir):
            directory.mkdir(parents=True, exist_ok=True)
        bin_dir, redis_binary, nginx_path = self.preflight()
        self.postgres = self._postgres(bin_dir)
        self.redis = Redis(
            binary=redis_binary,
            workdir=self.dir / "redis",
            port=options.redis_port,
            log=self.log_dir / "redis.log",
        )
        env = self.django_env(self.postgres, self.redis.url)

        # collectstatic needs neither database nor Redis: it runs while they start.
        collectstatic = self.manage("collectstatic", "--noinput", env=env)
        self.say(f"Starting PostgreSQL on {HOST}:{options.postgres_port}")
        self.postgres.start()
        self.say(f"Starting redis-server on {HOST}:{options.redis_port}")
        self.redis.start()
        self.say("Running migrate")
        migrate = self.manage("migrate", "--noinput", env=env)
        self._finish(migrate, MIGRATE_TIMEOUT)
        seed = self.manage("seed_demo", env=env)
        self._finish(seed, SEED_TIMEOUT, log_name="seed_demo")
        self._finish(collectstatic, COLLECTSTATIC_TIMEOUT)
        copied = [line for line in collectstatic.log.read_text().splitlines() if line.strip()]
        if copied:
            self.say(f"collectstatic: {copied[-1].strip()}")

        self.say(
            f"Starting daphne on {HOST}:{options.daphne_ports[0]} and :{options.daphne_ports[1]}"
        )
        self.daphnes = [Daphne(port, env, self.log_dir) for port in options.daphne_ports]
        for daphne in self.daphnes:
            daphne.spawn()
        self._await_daphnes()

        self.say(f"Starting nginx on {HOST}:{options.port} (TLS) and :{options.http_port}")
        site = Site(
            workdir=self.dir / "nginx",
            http_port=options.http_port,
            https_port=options.port,
            daphne_ports=options.daphne_ports,
            static_root=self.static_root,
            certificate_names=CERTIFICATE_NAMES,
            certificate_days=CERTIFICATE_DAYS,
            keep_certificate=True,
            comment=f"Generated by `make stack` (deploy/stack); the shipped files: {DEPLOY_NGINX}",
        )
        # Known before it starts, so that a stop during its start-up stops it too.
        self.nginx = Nginx(binary=nginx_path, site=site)
        self.nginx.start()
        self.write_state(self.postgres, self.redis, self.nginx)
        self.banner(self.nginx)

    def _finish(self, child: Child, timeout: float, log_name: str | None = None) -> None:
        """Wait for a management command; its output is shown for seed_demo (the demo
        passwords, printed once and kept nowhere), which therefore leaves no log."""
        try:
            status = child.wait(timeout=timeout)
            if status != 0:
                raise child.failure(f"failed with status {status}")
            if log_name == "seed_demo":
                self.say(child.log.read_text().rstrip())
        finally:
            if log_name == "seed_demo":
                child.log.unlink(missing_ok=True)

    def _await_daphnes(self) -> None:
        def healthy() -> bool:
            for daphne in self.daphnes:
                daphne.child.check()
            return all(daphne.healthy() for daphne in self.daphnes)

        try:
            wait_for(healthy, timeout=DAPHNE_START_TIMEOUT, what="both daphne /healthz")
        except Interrupted:
            raise
        except StackError as exc:
            late = [d for d in self.daphnes if d.child.running() and not d.healthy()]
            details = "\n".join(d.child.output() for d in late)
            raise StackError(f"{exc}\n{details}".rstrip()) from None

    def write_state(self, postgres: Postgres, redis: Redis, nginx: Nginx) -> None:
        """stack.json: ports, pids, URLs of this run, while it runs."""
        processes = {
            "postgres": postgres.child.pid,
            "redis": redis.child.pid,
            "nginx": nginx.child.pid,
        }
        for daphne in self.daphnes:
            processes[f"daphne-{daphne.port}"] = daphne.child.pid
        state = {
            "pid": os.getpid(),
            "url": f"{self.base_url}/",
            "ports": {
                "https": self.options.port,
                "http": self.options.http_port,
                "daphne": list(self.options.daphne_ports),
                "redis": self.options.redis_port,
                "postgres": self.options.postgres_port,
            },
            "processes": processes,
            "certificate": str(nginx.site.cert_file),
            "static_root": str(self.static_root),
            "logs": str(self.log_dir),
        }
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    def banner(self, nginx: Nginx) -> None:
        options = self.options
        cert = _shown(nginx.site.cert_file)
        database = (
            "throwaway (STACK_TEMP=1)" if options.temp else f"in {_shown(self.dir / 'postgres')}"
        )
        self.say(
            f"\nChat (production settings) on {self.base_url}/  (also https://localhost:{options.port}/)\n"
            f"  Admin:     {self.base_url}/admin/\n"
            f"  Health:    {self.base_url}/healthz\n"
            f"  API:       {self.base_url}/api/auth/token/  (POST username, password)\n"
            f"  WebSocket: wss://{HOST}:{options.port}/ws/chat/\n"
            f"  The certificate is self-signed: accept the browser's warning, or trust {cert}\n"
            f"  (curl --cacert {cert} {self.base_url}/healthz).\n"
            f"  nginx -> daphne {HOST}:{options.daphne_ports[0]} and :{options.daphne_ports[1]}"
            f" -> redis :{options.redis_port}, PostgreSQL :{options.postgres_port} ({database});"
            f" plain HTTP (health, redirect) on :{options.http_port}\n"
            f"  Logs in {_shown(self.log_dir)}/ and {_shown(nginx.site.workdir)}/\n"
            f"  manage.py against it: (set -a; . {_shown(self.env_file)}; set +a; "
            f"{_shown(Path(sys.executable))} manage.py createsuperuser)\n"
            "Ctrl-C stops it."
        )

    # --- run and stop ----------------------------------------------------------------------

    def watch(self) -> None:
        """Until a stop is requested; StackError as soon as one of the processes exits."""
        children = [d.child for d in self.daphnes]
        children += [s.child for s in (self.postgres, self.redis, self.nginx) if s is not None]
        while True:
            checkpoint()
            for child in children:
                child.check()
            time.sleep(0.2)

    def stop(self) -> bool:
        """nginx, daphne (both at once), redis, PostgreSQL; True if each stopped by itself."""
        clean = True
        for command in self.commands:
            if command.running():
                command.stop(timeout=5)
        if self.nginx is not None and self.nginx.child.proc is not None:
            self.say("Stopping nginx")
            clean &= self.nginx.stop()
        if any(daphne.child.proc is not None for daphne in self.daphnes):
            self.say("Stopping daphne (sockets are closed with 1001)")
            # Both at once: each takes a moment to close its sockets.
            for daphne in self.daphnes:
                if daphne.child.running():
                    daphne.child.started.send_signal(signal.SIGTERM)
            for daphne in self.daphnes:
                clean &= daphne.stop(signalled=True)
        if self.redis is not None and self.redis.child.proc is not None:
            self.say("Stopping redis-server")
            clean &= self.redis.stop()
        if self.postgres is not None and self.postgres.child.proc is not None:
            self.say("Stopping PostgreSQL")
            clean &= self.postgres.stop()
        if self.temp_basedir is not None:
            shutil.rmtree(self.temp_basedir, ignore_errors=True)
        self.state_file.unlink(missing_ok=True)
        return clean


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)
    options.directory.mkdir(parents=True, exist_ok=True)
    stack = Stack(options)
    status = 0
    try:
        with _locked(options.directory):
            try:
                stack.start()
                stack.watch()
            except Interrupted as interrupted:
                stack.say(f"\n{interrupted}: stopping")
            except StackError as error:
                print(f"\nmake stack: {error}", file=sys.stderr, flush=True)
                status = 1
            finally:
                if not stack.stop():
                    status = status or 1
    except StackError as error:
        print(f"make stack: {error}", file=sys.stderr, flush=True)
        return 1
    if status == 0:
        stack.say("Stopped.")
    return status
