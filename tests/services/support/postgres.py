"""A real PostgreSQL server on a free port, started, stopped and restarted by tests.

The server runs from a data directory in a temporary directory of its own, created by
initdb on the first start and kept across stop/start (a restart finds its data again, as a
restarted database server would), removed by `remove()`. PostgreSQL refuses to run as root:
when the tests run as root, initdb and the server run as the `postgres` system user (which
Debian's package creates), in a temporary directory chowned to it. pytest's own temporary
directories are 0700 root, so they only hold the log, which is opened by this process.

Durability is off (fsync, synchronous_commit, full_page_writes): a test database that loses
its last transactions in a power cut costs nothing, and commits get much cheaper.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from deploy.stack.services import find_postgres_bin_dir
from tests.services.support.common import (
    HOST,
    POSTGRES_START_TIMEOUT,
    STOP_TIMEOUT,
    ServiceError,
    base_environment,
    free_port,
    tail,
    wait_until,
)

# The system user Debian's postgresql-common creates; the server runs as it under root.
SYSTEM_USER = "postgres"
# Several daphne processes, each with a thread pool opening connections, plus migrate.
MAX_CONNECTIONS = 300
INITDB_TIMEOUT = 60.0
# The role the servers under test connect as (owner of their databases, not a superuser),
# and the superuser that creates roles and databases.
APP_USER = "chat"
ADMIN_USER = "postgres"
DEFAULT_DATABASE = "chat"

_MISSING = (
    "PostgreSQL server binaries (initdb, postgres) were not found under "
    "/usr/lib/postgresql/*/bin or on PATH. `make test` installs them as root "
    "(apt-get install postgresql, Debian's package), or install it yourself."
)


def postgres_bin_dir() -> Path:
    """The directory holding initdb and postgres (found as `make stack` finds it)."""
    path = find_postgres_bin_dir()
    if path is None:
        raise ServiceError(_MISSING)
    return path


def _system_user() -> pwd.struct_passwd | None:
    """The account initdb and postgres run as: `postgres` when we are root, else None (us)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise ServiceError(
            f"running as root, and PostgreSQL refuses to: there is no `{SYSTEM_USER}` system "
            "user to run it as. Debian's package `postgresql` creates it "
            "(apt-get install postgresql), or run the tests as an ordinary user."
        ) from None


def _temp_root(user: pwd.struct_passwd | None) -> str:
    """Where the data directory goes: the usual temporary directory, unless the server's
    user cannot pass through it (a TMPDIR under /root, say); then /tmp."""
    root = tempfile.gettempdir()
    if user is None:
        return root
    for directory in (Path(root), *Path(root).parents):
        if not directory.stat().st_mode & 0o001:
            return "/tmp"  # noqa: S108 (mkdtemp: a fresh 0700 directory, chowned below)
    return root


@dataclass
class PostgresServer:
    """One PostgreSQL server on 127.0.0.1:port. `start()` initialises it on first use."""

    bin_dir: Path
    # Where the log goes (any directory this process can write); the data lives elsewhere.
    workdir: Path
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    proc: subprocess.Popen | None = None
    # The temporary directory holding data/ and socket/; owned by the server's user.
    basedir: Path | None = None

    @property
    def log_file(self) -> Path:
        return self.workdir / "postgres.log"

    @property
    def data_dir(self) -> Path:
        assert self.basedir is not None, "server never started"
        return self.basedir / "data"

    @property
    def url(self) -> str:
        """The default database, as DATABASE_URL takes it."""
        return self.url_for(DEFAULT_DATABASE)

    def url_for(self, database: str) -> str:
        return f"postgres://{APP_USER}:{self.password}@{HOST}:{self.port}/{database}"

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """Start on self.port (again, after a stop) and wait until it accepts logins."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        first = self.basedir is None
        if first:
            self._initdb()
        args = [
            str(self.bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", f"listen_addresses={HOST}",
            "-c", f"unix_socket_directories={self.basedir / 'socket'}",
            "-c", f"max_connections={MAX_CONNECTIONS}",
            "-c", "shared_buffers=32MB",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "log_line_prefix=%m [%p] ",
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            # Its own session: on SIGKILL the backends it forked go down with it.
            self.proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **self._as_server_user(),
            )
        try:
            wait_until(
                self._ready, timeout=POSTGRES_START_TIMEOUT, what=f"postgres on {self.port}"
            )
            if first:
                self._create_app_role()
        except ServiceError as exc:
            self.stop()
            raise ServiceError(f"{exc}\n{self.output()}") from None
        return self

    def _initdb(self) -> None:
        user = _system_user()
        # Not under pytest's tmp (0700 root): the server's user must reach it and own it.
        self.basedir = Path(tempfile.mkdtemp(prefix="chat-postgres-", dir=_temp_root(user)))
        (self.basedir / "socket").mkdir()
        pwfile = self.basedir / "pwfile"
        pwfile.write_text(self.admin_password + "\n")
        if user is not None:
            for path in (self.basedir, self.basedir / "socket", pwfile):
                os.chown(path, user.pw_uid, user.pw_gid)
        args = [
            str(self.bin_dir / "initdb"),
            "-D", str(self.data_dir),
            "-U", ADMIN_USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        ]  # fmt: skip
        try:
            result = subprocess.run(
                args,
                capture_output=True,
                text=True,
                timeout=INITDB_TIMEOUT,
                check=False,
                **self._as_server_user(),
            )
        except subprocess.TimeoutExpired:
            raise ServiceError(f"initdb took more than {INITDB_TIMEOUT:.0f}s") from None
        finally:
            pwfile.unlink(missing_ok=True)
        with self.log_file.open("a") as log:
            log.write(f"--- initdb ---\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise ServiceError(
                f"initdb failed with {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )

    def _as_server_user(self) -> dict[str, Any]:
        """Popen arguments: run as `postgres` (no supplementary groups) when we are root."""
        env = base_environment()
        env.pop("PYTHONUNBUFFERED", None)
        user = _system_user()
        if user is None:
            return {"env": env, "cwd": self.basedir}
        env.update(HOME=str(self.basedir), USER=user.pw_name, LOGNAME=user.pw_name)
        return {
            "env": env,
            # Its own directory: root's cwd (/root, the checkout) may be closed to it.
            "cwd": self.basedir,
            "user": user.pw_uid,
            "group": user.pw_gid,
            "extra_groups": [g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem],
        }

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServiceError(f"postgres exited with {self.proc.returncode}")
        return self.accepts_connections()

    def accepts_connections(self) -> bool:
        """Whether the superuser can log in and run a query right now."""
        try:
            with self._admin() as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        """Fast shutdown (SIGINT: sessions are ended, nothing waits for clients, as
        `pg_ctl stop -m fast` does); immediate (SIGQUIT), then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig in (signal.SIGINT, signal.SIGQUIT):
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                continue
            return
        self.kill()

    def kill(self) -> None:
        """SIGKILL to the postmaster and every backend: a crash, not a shutdown."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT)

    def remove(self) -> None:
        """Stop, then delete the data directory; the next start() initialises a new one."""
        self.stop()
        if self.basedir is not None:
            shutil.rmtree(self.basedir, ignore_errors=True)
            self.basedir = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # --- roles and databases -----------------------------------------------------------------

    def _admin(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host=HOST,
            port=self.port,
            user=ADMIN_USER,
            password=self.admin_password,
            dbname=database,
            connect_timeout=2,
            # Bounds CREATE DATABASE too (it waits for the template to be free).
            options="-c statement_timeout=30s",
            autocommit=True,
        )

    def _create_app_role(self) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(APP_USER), sql.Literal(self.password)
                )
            )
        self.create_database(DEFAULT_DATABASE)

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database `name`, owned by the application role, and return its URL.

        `template` copies another database (schema and rows) instead of an empty one; nobody
        may be connected to the template while it is copied.
        """
        query = sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(APP_USER)
        )
        if template is not None:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        try:
            with self._admin() as conn:
                conn.execute(query)
        except psycopg.Error as exc:
            raise ServiceError(f"CREATE DATABASE {name} failed: {exc}\n{self.output()}") from None
        return self.url_for(name)

    def output(self) -> str:
        return f"--- postgres log ---\n{tail(self.log_file)}"
