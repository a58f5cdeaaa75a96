"""The servers of the stack: PostgreSQL, redis-server, daphne (`manage.py serve`), nginx.

Each is started on a given 127.0.0.1 port, waited for within a bound (its log tail in the
error when it does not come up), and stopped the way its documentation says it shuts down
fast but cleanly.
"""

from __future__ import annotations

import grp
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import ssl
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from psycopg import sql

from deploy.stack.common import HOST, ROOT, StackError
from deploy.stack.nginx import Site
from deploy.stack.processes import Child

STOP_TIMEOUT = 10.0
# deploy/chat@.service gives daphne 15 s to close its sockets with 1001.
DAPHNE_STOP_TIMEOUT = 15.0
INITDB_TIMEOUT = 60.0
POSTGRES_START_TIMEOUT = 30.0
REDIS_START_TIMEOUT = 10.0
# Django, DRF and daphne import in a few seconds; a loaded 2-core machine may need more.
DAPHNE_START_TIMEOUT = 60.0
NGINX_START_TIMEOUT = 15.0

# --- PostgreSQL ----------------------------------------------------------------------------

# The system user Debian's postgresql-common creates; the server runs as it under root.
SYSTEM_USER = "postgres"
ADMIN_USER = "postgres"
APP_USER = "chat"
DATABASE = "chat"
# Two daphne processes, each pooling up to DATABASE_POOL_MAX_SIZE (20) connections.
MAX_CONNECTIONS = 200

_NO_POSTGRES = (
    "PostgreSQL server binaries (initdb, postgres) were not found under "
    "/usr/lib/postgresql/*/bin or on PATH. `make stack` installs them as root "
    "(apt-get install postgresql, Debian's package), or install it yourself."
)


def postgres_bin_dir() -> Path:
    path = find_postgres_bin_dir()
    if path is None:
        raise StackError(_NO_POSTGRES)
    return path


def find_postgres_bin_dir() -> Path | None:
    """Debian's newest /usr/lib/postgresql/N/bin, else wherever PATH has initdb; None if
    neither holds the server's binaries. The test fixtures find it the same way."""
    versioned = []
    for candidate in Path("/usr/lib/postgresql").glob("*/bin"):
        match = re.fullmatch(r"(\d+)(?:\.(\d+))?", candidate.parent.name)
        if match and _has_server(candidate):
            versioned.append(((int(match[1]), int(match[2] or 0)), candidate))
    if versioned:
        return max(versioned)[1]
    initdb = shutil.which("initdb")
    if initdb is not None and _has_server(Path(initdb).parent):
        return Path(initdb).parent
    return None


def _has_server(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in ("initdb", "postgres"))


def postgres_user() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as: `postgres` when we are root (it refuses to run as
    root), else None: ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise StackError(
            f"running as root, and PostgreSQL refuses to: there is no `{SYSTEM_USER}` system "
            "user to run it as. Debian's package `postgresql` creates it "
            "(apt-get install postgresql), or run `make stack` as an ordinary user."
        ) from None


def _groups_of(user: pwd.struct_passwd) -> set[int]:
    return {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}


def unreachable_by(user: pwd.struct_passwd, path: Path) -> Path | None:
    """The first directory above `path` that `user` may not enter, None if there is none."""
    groups = _groups_of(user)
    for directory in reversed(path.resolve().parents):
        info = directory.stat()
        if info.st_uid == user.pw_uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return directory
    return None


def temporary_basedir(user: pwd.struct_passwd | None) -> Path:
    """A fresh directory for a throwaway cluster, where the server's user can reach it."""
    root = Path(tempfile.gettempdir())
    if user is not None and unreachable_by(user, root / "x") is not None:
        root = Path("/tmp")  # noqa: S108 (mkdtemp: a fresh 0700 directory, chowned later)
    return Path(tempfile.mkdtemp(prefix="chat-stack-postgres-", dir=root))


@dataclass
class Postgres:
    """A PostgreSQL cluster in `basedir`/data (initialised on first start), serving the
    database `chat` to the role `chat` on 127.0.0.1:port, with no Unix socket."""

    bin_dir: Path
    basedir: Path
    port: int
    log: Path
    password: str
    admin_password: str
    # False for a throwaway cluster: no fsync, nothing survives a power cut.
    durable: bool = True
    child: Child = field(init=False)

    def __post_init__(self) -> None:
        self.child = Child("PostgreSQL", self.log)

    @property
    def data_dir(self) -> Path:
        return self.basedir / "data"

    @property
    def url(self) -> str:
        return f"postgres://{APP_USER}:{self.password}@{HOST}:{self.port}/{DATABASE}"

    def _popen_args(self) -> dict:
        """Run as `postgres` (its own groups, its own HOME) when we are root."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        user = postgres_user()
        if user is None:
            return {"env": env, "cwd": self.basedir}
        env.update(HOME=str(self.basedir), USER=user.pw_name, LOGNAME=user.pw_name)
        return {
            "env": env,
            # Its own directory: root's working directory may be closed to it.
            "cwd": self.basedir,
            "user": user.pw_uid,
            "group": user.pw_gid,
            "extra_groups": sorted(_groups_of(user) - {user.pw_gid}),
        }

    def _prepare(self) -> None:
        user = postgres_user()
        self.basedir.mkdir(parents=True, exist_ok=True)
        self.basedir.chmod(0o700)
        if user is None:
            return
        blocked = unreachable_by(user, self.basedir)
        if blocked is not None:
            raise StackError(
                f"PostgreSQL runs as `{user.pw_name}` (it refuses to run as root), which cannot "
                f"enter {blocked}, so it cannot reach its data directory {self.basedir}. "
                "Use STACK_TEMP=1 (a throwaway database in a temporary directory), point "
                "STACK_DIR at a directory it can reach, or run `make stack` as another user."
            )
        os.chown(self.basedir, user.pw_uid, user.pw_gid)

    def _initdb(self) -> None:
        user = postgres_user()
        pwfile = self.basedir / "pwfile"
        pwfile.write_text(self.admin_password + "\n")
        if user is not None:
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        pwfile.chmod(0o600)
        args = [
            str(self.bin_dir / "initdb"),
            "-D", str(self.data_dir),
            "-U", ADMIN_USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        ]  # fmt: skip
        if not self.durable:
            args.append("--no-sync")
        try:
            Child("initdb", self.log).run(args, timeout=INITDB_TIMEOUT, **self._popen_args())
        finally:
            pwfile.unlink(missing_ok=True)

    def _check_version(self) -> None:
        version = (self.data_dir / "PG_VERSION").read_text().strip()
        installed = self.bin_dir.parent.name
        if re.fullmatch(r"\d+(\.\d+)?", installed) and installed.split(".")[0] != version:
            raise StackError(
                f"{self.data_dir} holds a PostgreSQL {version} cluster, and the server "
                f"found is PostgreSQL {installed} ({self.bin_dir}). Remove {self.basedir} "
                "to start over with an empty database, or use STACK_TEMP=1."
            )

    def start(self) -> Postgres:
        self._prepare()
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            print(f"Initialising PostgreSQL in {self.data_dir}", flush=True)
            self._initdb()
        else:
            self._check_version()
        args = [
            str(self.bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", f"listen_addresses={HOST}",
            # TCP on 127.0.0.1 only: no socket file in /run/postgresql or anywhere else.
            "-c", "unix_socket_directories=",
            "-c", f"max_connections={MAX_CONNECTIONS}",
            "-c", "log_line_prefix=%m [%p] ",
        ]  # fmt: skip
        if not self.durable:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            args += ["-c", "full_page_writes=off"]
        self.child.spawn(args, **self._popen_args())
        self.child.await_ready(
            self._ready, timeout=POSTGRES_START_TIMEOUT, what=f"PostgreSQL on {self.port}"
        )
        self._ensure_database()
        return self

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(
            host=HOST,
            port=self.port,
            user=ADMIN_USER,
            password=self.admin_password,
            dbname="postgres",
            connect_timeout=2,
            options="-c statement_timeout=30s",
            autocommit=True,
        )

    def _ready(self) -> bool:
        try:
            with self._admin() as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            if "password authentication failed" in str(exc):
                raise StackError(
                    f"PostgreSQL in {self.data_dir} refuses the stored superuser password "
                    f"({exc}). Remove {self.basedir} to start over with an empty database."
                ) from None
            return False
        return True

    def _ensure_database(self) -> None:
        """The role `chat` with the stored password, and its database `chat`."""
        role, database = sql.Identifier(APP_USER), sql.Identifier(DATABASE)
        try:
            with self._admin() as conn:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_USER])
                verb = "ALTER" if exists.fetchone() else "CREATE"
                conn.execute(
                    sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                        role, sql.Literal(self.password)
                    )
                )
                found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE])
                if not found.fetchone():
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))
        except psycopg.Error as exc:
            raise self.child.failure(f"could not create the role and database: {exc}") from None

    def stop(self) -> bool:
        """Fast shutdown (SIGINT: sessions ended, as `pg_ctl stop -m fast`), then immediate
        (SIGQUIT), then SIGKILL."""
        return self.child.stop((signal.SIGINT, signal.SIGQUIT), timeout=STOP_TIMEOUT)


# --- Redis ---------------------------------------------------------------------------------


def find_redis_server() -> str | None:
    """Path of redis-server (PATH, then Debian's places); None if not installed."""
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.access(p, os.X_OK)),
        None,
    )


def redis_server_binary() -> str:
    found = find_redis_server()
    if found is None:
        raise StackError(
            "redis-server is not installed. `make stack` installs it when run as root "
            "(apt-get install redis-server), or install it yourself."
        )
    return found


@dataclass
class Redis:
    """redis-server on 127.0.0.1:port, nothing persisted (channel layer, throttles, tickets:
    nothing that must outlive a restart)."""

    binary: str
    workdir: Path
    port: int
    log: Path
    child: Child = field(init=False)

    def __post_init__(self) -> None:
        self.child = Child("redis-server", self.log)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> Redis:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--logfile", "",
            "--daemonize", "no",
        ]  # fmt: skip
        self.child.spawn(args)
        self.child.await_ready(
            self._ready, timeout=REDIS_START_TIMEOUT, what=f"redis-server on {self.port}"
        )
        return self

    def _ready(self) -> bool:
        client = redis.Redis(
            host=HOST, port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> bool:
        return self.child.stop((signal.SIGTERM,), timeout=STOP_TIMEOUT)


# --- Django ---------------------------------------------------------------------------------


def manage(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def http_get(
    port: int, path: str, *, tls: ssl.SSLContext | None = None, timeout: float = 2
) -> tuple[int, str]:
    """(status, body) of one GET to 127.0.0.1:port; OSError when nothing answers."""
    if tls is None:
        connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    else:
        connection = http.client.HTTPSConnection(HOST, port, timeout=timeout, context=tls)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def health_ok(port: int, *, tls: ssl.SSLContext | None = None) -> bool:
    """Whether /healthz answers 200 with every check ok."""
    try:
        status, body = http_get(port, "/healthz", tls=tls)
    except OSError:
        return False
    if status != 200:
        return False
    try:
        report = json.loads(body)
    except ValueError:
        return False
    return report.get("status") == "ok"


@dataclass
class Daphne:
    """One `manage.py serve --proxy-headers` process, as deploy/chat@.service runs it."""

    port: int
    env: dict[str, str]
    log_dir: Path
    child: Child = field(init=False)

    def __post_init__(self) -> None:
        self.child = Child(
            f"daphne on {HOST}:{self.port}",
            self.log_dir / f"daphne-{self.port}.log",
            other_logs=(self.log_file,),
        )

    @property
    def access_log(self) -> Path:
        return self.log_dir / f"access-{self.port}.log"

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"realtime-{self.port}.log"

    def spawn(self) -> Daphne:
        args = manage(
            "serve",
            "--bind", HOST,
            "--port", str(self.port),
            "--proxy-headers",
            "--access-log", str(self.access_log),
        )  # fmt: skip
        env = dict(self.env, LOG_FILE=str(self.log_file))
        self.child.spawn(args, cwd=ROOT, env=env)
        return self

    def healthy(self) -> bool:
        return health_ok(self.port)

    def stop(self, *, signalled: bool = False) -> bool:
        """SIGTERM (unless `signalled` already): every socket is closed with 1001
        (realtime.server). A second SIGTERM would only hurry twisted's shutdown."""
        signals = () if signalled else (signal.SIGTERM,)
        return self.child.stop(signals, timeout=DAPHNE_STOP_TIMEOUT)


# --- nginx ----------------------------------------------------------------------------------


@dataclass
class Nginx:
    """nginx serving `site` (deploy/nginx/chat.conf rendered for this machine)."""

    binary: str
    site: Site
    child: Child = field(init=False)

    def __post_init__(self) -> None:
        self.child = Child(
            "nginx", self.site.workdir / "console.log", other_logs=(self.site.error_log,)
        )

    def tls(self) -> ssl.SSLContext:
        """A client context trusting the site's certificate (and checking its names)."""
        return ssl.create_default_context(cafile=str(self.site.cert_file))

    def start(self) -> Nginx:
        self.site.write()
        checked = Child("nginx -t", self.site.workdir / "nginx-t.log")
        checked.log.unlink(missing_ok=True)
        checked.run(self.site.command(self.binary, "-t"), timeout=30)
        self.child.spawn(self.site.command(self.binary, "-g", "daemon off; master_process on;"))
        tls = self.tls()
        self.child.await_ready(
            lambda: health_ok(self.site.https_port, tls=tls),
            timeout=NGINX_START_TIMEOUT,
            what=f"https://{HOST}:{self.site.https_port}/healthz through nginx",
        )
        return self

    def stop(self) -> bool:
        """SIGTERM: nginx's fast shutdown."""
        return self.child.stop((signal.SIGTERM,), timeout=STOP_TIMEOUT)
