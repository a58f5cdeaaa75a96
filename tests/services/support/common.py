"""Constants and process plumbing shared by the tier-2 helpers: ports, waits, environments."""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy.stack.common import wait_until as stack_wait_until

ROOT = Path(__file__).resolve().parents[3]
# The nginx directives operators deploy; the tests include these very files.
DEPLOY_NGINX = ROOT / "deploy" / "nginx"
PYTHON = sys.executable
HOST = "127.0.0.1"
ORIGIN = "http://chat.test"
FOREIGN_ORIGIN = "http://evil.test"
SUBPROTOCOL = "chat.v1"
PASSWORD = "correct-horse-battery-staple-42"

# Django, DRF and daphne import in a few seconds; a loaded 2-core machine may need more.
SERVER_START_TIMEOUT = 45.0
REDIS_START_TIMEOUT = 10.0
# initdb is separate (it has its own timeout); a start after a fast shutdown takes a second.
POSTGRES_START_TIMEOUT = 30.0
NGINX_START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 15.0
RECV_TIMEOUT = 10.0

# The only variables a started process inherits; everything the settings read comes from the
# tests, so a developer's shell (DATABASE_URL, REDIS_URL...) cannot leak into a run. Under
# `make coverage` the COVERAGE_PROCESS_* variable makes each Python process measure itself.
INHERITED_VARS = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "TZ",
    "COVERAGE_PROCESS_CONFIG",
    "COVERAGE_PROCESS_START",
)

_names = itertools.count(1)


class ServiceError(AssertionError):
    """A process did not start, answer or stop in time; the message carries its output."""


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1
) -> Any:
    """Poll until `predicate` returns something truthy; raise ServiceError after `timeout`."""
    return stack_wait_until(
        predicate, timeout=timeout, what=what, interval=interval, error=ServiceError
    )


def unique_name(prefix: str) -> str:
    """A fresh username, room slug or directory name: every server of a run shares one database."""
    return f"{prefix}{next(_names)}-{uuid.uuid4().hex[:8]}"


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no output)"


def base_environment() -> dict[str, str]:
    env = {name: os.environ[name] for name in INHERITED_VARS if name in os.environ}
    # Console output reaches the capture files as it happens, not when the process exits.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def migrated_environment(workdir: Path, database_url: str | None = None) -> dict[str, str]:
    """The environment every server of a run shares, with its database migrated.

    One key, one database (`database_url`, e.g. a PostgresServer's; a SQLite file in
    `workdir` when None), the test origin and throttles no test reaches; each server adds its
    own VAR_DIR, LOG_FILE and REDIS_URL.
    """
    env = base_environment()
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DJANGO_DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=database_url or f"sqlite:///{workdir / 'db.sqlite3'}",
        WS_ALLOWED_ORIGINS=ORIGIN,
        THROTTLE_LOGIN="10000/min",
        THROTTLE_REGISTER="10000/min",
        THROTTLE_TICKET="10000/min",
        THROTTLE_ROOM_CREATE="10000/min",
        # Every test client comes from 127.0.0.1 and many share an account: the socket caps
        # are lifted here, and tests/services/test_connection_caps.py sets its own.
        WS_MAX_CONNECTIONS_PER_USER="100000",
        WS_MAX_CONNECTIONS_PER_ADDRESS="100000",
        LOG_FORMAT="json",
        VAR_DIR=str(workdir / "var-migrate"),
        LOG_FILE=str(workdir / "var-migrate" / "realtime.log"),
    )
    migrate(env)
    return env


def migrate(env: dict[str, str]) -> None:
    """`manage.py migrate` against env's DATABASE_URL, with env's settings."""
    try:
        result = subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ServiceError("migrate took more than 120s") from None
    if result.returncode != 0:
        raise ServiceError(f"migrate failed:\n{result.stdout}\n{result.stderr}")


def stop_process(proc: subprocess.Popen, *, timeout: float) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class ChatEndpoint:
    """URLs of something serving the chat on HOST:port (daphne itself, or nginx before it)."""

    port: int

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws/chat/"
