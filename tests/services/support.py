"""Real processes and real clients for the tier-2 tests: redis-server, daphne, nginx, HTTP,
WebSockets.

Everything here talks to 127.0.0.1 over real sockets. Every wait is bounded, so a server that
hangs or dies makes a test fail with its output attached instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

ROOT = Path(__file__).resolve().parents[2]
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
NGINX_START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 15.0
RECV_TIMEOUT = 10.0

# The only variables a started process inherits; everything the settings read comes from the
# tests, so a developer's shell (DATABASE_URL, REDIS_URL...) cannot leak into a run.
INHERITED_VARS = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ")

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
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise ServiceError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


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


def migrated_environment(workdir: Path) -> dict[str, str]:
    """The environment every server of a run shares, with its SQLite database migrated.

    One key, one database file, the test origin and throttles no test reaches; each server
    adds its own VAR_DIR, LOG_FILE and REDIS_URL.
    """
    env = base_environment()
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DJANGO_DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        WS_ALLOWED_ORIGINS=ORIGIN,
        THROTTLE_LOGIN="10000/min",
        THROTTLE_REGISTER="10000/min",
        THROTTLE_TICKET="10000/min",
        LOG_FORMAT="json",
        VAR_DIR=str(workdir / "var-migrate"),
        LOG_FILE=str(workdir / "var-migrate" / "realtime.log"),
    )
    result = subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise ServiceError(f"migrate failed:\n{result.stdout}\n{result.stderr}")
    return env


def _stop_process(proc: subprocess.Popen, *, timeout: float) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


# --- redis-server ----------------------------------------------------------------------------


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
            _stop_process(self.proc, timeout=STOP_TIMEOUT)


# --- daphne (manage.py serve) ----------------------------------------------------------------


@dataclass
class Server:
    """One daphne process running the project, as `manage.py serve` starts it."""

    name: str
    env: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    # As deploy/chat@.service runs it behind nginx: the client address is X-Forwarded-For's.
    proxy_headers: bool = False
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws/chat/"

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

    def start(self) -> Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [PYTHON, "manage.py", "serve", "--bind", HOST, "--port", str(self.port)]
        if self.proxy_headers:
            args.append("--proxy-headers")
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
            _stop_process(self.proc, timeout=STOP_TIMEOUT)

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


# --- nginx -----------------------------------------------------------------------------------


def nginx_binary() -> str:
    """Path of nginx (Debian installs it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/bin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise ServiceError(
            "nginx is not installed. `make test` installs it when run as root "
            "(apt-get install nginx), or install it yourself: sudo apt-get install nginx"
        )
    return found


@dataclass
class Nginx:
    """A real nginx in front of one daphne, serving the shipped deploy/nginx/ directives.

    The generated configuration only adds what a machine-wide install would: a listening
    port, file locations inside `workdir`, and the `chat_daphne` upstream. Everything that
    decides how a request reaches daphne comes from the included deploy files, unchanged.
    """

    binary: str
    workdir: Path
    upstream: Server
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws/chat/"

    @property
    def conf_file(self) -> Path:
        return self.workdir / "nginx.conf"

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    @property
    def error_log(self) -> Path:
        return self.workdir / "error.log"

    @property
    def console_file(self) -> Path:
        return self.workdir / "console.log"

    def http_block(self) -> str:
        """What goes inside http {}: the shipped directives around a plain-HTTP server."""
        return f"""\
    include "{DEPLOY_NGINX / "chat-http.conf"}";

    upstream chat_daphne {{
        server {HOST}:{self.upstream.port};
    }}

    server {{
        listen {HOST}:{self.port};
        server_name chat.test;
        access_log "{self.access_log}" chat;
        include "{DEPLOY_NGINX / "chat-locations.conf"}";
    }}
"""

    def config(self) -> str:
        """The main file, standing in for Debian's /etc/nginx/nginx.conf, with its state in
        `workdir` rather than /var and /run."""
        tmp = self.workdir
        # Run as root, nginx would hand its workers to `nobody`, who cannot enter pytest's
        # private (0700) temporary directory where the temp paths live.
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp_paths = "".join(
            f'    {kind}_temp_path "{tmp / kind}";\n'
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return (
            f"# Generated for one test run; the directives under test are in {DEPLOY_NGINX}.\n"
            f"{user}worker_processes 1;\n"
            f'pid "{tmp / "nginx.pid"}";\n'
            f'error_log "{self.error_log}" warn;\n'
            "events { worker_connections 512; }\n\n"
            f"http {{\n{temp_paths}\n{self.http_block()}}}\n"
        )

    def write_files(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf_file.write_text(self.config())

    def _command(self, *extra: str) -> list[str]:
        return [
            self.binary,
            "-p", f"{self.workdir}/",
            # Startup errors too, before the configuration's error_log applies: never /var/log.
            "-e", str(self.error_log),
            "-c", str(self.conf_file),
            *extra,
        ]  # fmt: skip

    def test_config(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t`, as an operator runs it before a reload."""
        self.write_files()
        return subprocess.run(
            self._command("-t"), capture_output=True, text=True, timeout=30, check=False
        )

    def start(self) -> Nginx:
        """Write the configuration, start nginx and wait until it answers through daphne."""
        self.write_files()
        with self.console_file.open("ab") as console:
            # Its own process group: the workers go down with the master even on SIGKILL.
            self.proc = subprocess.Popen(
                self._command("-g", "daemon off; master_process on;"),
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_until(self._answers, timeout=NGINX_START_TIMEOUT, what=f"nginx on {self.port}")
        except ServiceError as exc:
            self.stop()
            raise ServiceError(f"{exc}\n{self.output()}") from None
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServiceError(f"nginx exited with {self.proc.returncode}")
        try:
            response = http_request("GET", f"{self.base_url}/healthz", timeout=2)
        except OSError:
            return False
        # 502/504 are nginx's own answers: daphne has not been reached yet.
        return response.status not in (502, 504)

    def stop(self) -> None:
        """SIGTERM (nginx's fast shutdown); SIGKILL to the whole group if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT)

    def access_lines(self) -> list[str]:
        if not self.access_log.exists():
            return []
        return self.access_log.read_text(errors="replace").splitlines()

    def all_output(self) -> str:
        """Everything nginx wrote: access log, error log and console."""
        return "".join(
            p.read_text(errors="replace")
            for p in (self.access_log, self.error_log, self.console_file)
            if p.exists()
        )

    def output(self) -> str:
        return (
            f"--- nginx error log ---\n{tail(self.error_log)}\n"
            f"--- nginx console ---\n{tail(self.console_file, 10)}\n"
            f"--- nginx access log ---\n{tail(self.access_log, 10)}\n"
            f"{self.upstream.output()}"
        )


def self_signed_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """A throwaway certificate and key for `host`, as PEM files in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "fullchain.pem", directory / "privkey.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class SiteNginx(Nginx):
    """nginx serving deploy/nginx/chat.conf itself, included as conf.d/ includes it.

    Only what belongs to one machine is rewritten in a copy of chat.conf: the two listen
    ports, the daphne ports, the certificate and the log directory. The files it includes
    are the shipped ones, reached through chat/ -> deploy/nginx/ as /etc/nginx/chat/ holds
    them in production. `port` stands for 80 and `https_port` for 443.
    """

    https_port: int = field(default_factory=free_port)

    @property
    def ws_url(self) -> str:
        return f"wss://{HOST}:{self.https_port}/ws/chat/"

    @property
    def access_log(self) -> Path:
        return self.workdir / "log" / "chat.access.log"

    def http_block(self) -> str:
        return "    include site.conf;\n"

    def write_files(self) -> None:
        super().write_files()
        (self.workdir / "log").mkdir(exist_ok=True)
        included = self.workdir / "chat"
        if not included.exists():
            included.symlink_to(DEPLOY_NGINX, target_is_directory=True)
        cert_file, key_file = self_signed_certificate(self.workdir, "chat.example.com")
        site = (DEPLOY_NGINX / "chat.conf").read_text()
        machine_specific = {
            "listen 80;": f"listen {HOST}:{self.port};",
            "listen 443 ": f"listen {HOST}:{self.https_port} ",
            "127.0.0.1:8001 ": f"{HOST}:{self.upstream.port} ",
            "127.0.0.1:8002 ": f"{HOST}:{self.upstream.port} ",
            "/etc/ssl/chat/fullchain.pem": str(cert_file),
            "/etc/ssl/chat/privkey.pem": str(key_file),
            "/var/log/nginx/": f"{self.workdir}/log/",
        }
        for shipped, replacement in machine_specific.items():
            if shipped not in site:
                raise ServiceError(f"chat.conf no longer contains {shipped!r}; update SiteNginx")
            site = site.replace(shipped, replacement)
        (self.workdir / "site.conf").write_text(site)


# --- HTTP ------------------------------------------------------------------------------------

# Straight to 127.0.0.1 even when the environment names a proxy.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: Any


def http_request(
    method: str,
    url: str,
    payload: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = HTTP_TIMEOUT,
) -> HttpResponse:
    """One request; any status (4xx/5xx too) is returned, only network errors raise."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (http only)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with _opener.open(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode(errors="replace")
    return HttpResponse(status, body)


@dataclass(frozen=True)
class Account:
    username: str
    access: str
    refresh: str


class Api:
    """The REST API of one server (or of nginx in front of it), as a client would call it."""

    def __init__(self, server: Server | Nginx) -> None:
        self.server = server

    def call(self, method: str, path: str, payload: Any = None, **kwargs: Any) -> HttpResponse:
        return http_request(method, self.server.base_url + path, payload, **kwargs)

    def expect(self, status: int, method: str, path: str, payload: Any = None, **kw: Any) -> Any:
        response = self.call(method, path, payload, **kw)
        assert response.status == status, (
            f"{method} {path}: {response.status} {response.body}\n{self.server.output()}"
        )
        return response.body

    def account(self, prefix: str = "user") -> Account:
        """Register a new user and log in, through the real endpoints."""
        username = unique_name(prefix)
        self.expect(
            201,
            "POST",
            "/api/auth/register/",
            {"username": username, "email": f"{username}@example.com", "password": PASSWORD},
        )
        tokens = self.expect(
            200, "POST", "/api/auth/token/", {"username": username, "password": PASSWORD}
        )
        return Account(username, tokens["access"], tokens["refresh"])

    def room(self, owner: Account, *, private: bool = False, prefix: str = "room") -> str:
        slug = unique_name(prefix)
        self.expect(
            201,
            "POST",
            "/api/rooms/",
            {"slug": slug, "title": slug, "is_private": private},
            token=owner.access,
        )
        return slug

    def add_member(self, owner: Account, slug: str, member: Account) -> None:
        self.expect(
            201,
            "POST",
            f"/api/rooms/{slug}/members/",
            {"username": member.username},
            token=owner.access,
        )

    def ticket(self, account: Account) -> str:
        return self.expect(201, "POST", "/api/realtime/ticket/", token=account.access)["ticket"]

    def health(self) -> HttpResponse:
        return self.call("GET", "/healthz", timeout=5)


# --- WebSockets ------------------------------------------------------------------------------


def ws_connect(
    server: Server | Nginx,
    *,
    token: str | None = None,
    how: str = "header",
    query: str = "",
    origin: str | None = None,
    headers: dict[str, str] | None = None,
    open_timeout: float = 10,
    **kwargs: Any,
) -> connect:
    """An unopened websockets connection; `how` picks where the access token travels."""
    headers = dict(headers or {})
    subprotocols = [SUBPROTOCOL]
    if token is not None and how == "header":
        headers["Authorization"] = f"Bearer {token}"
    elif token is not None and how == "subprotocol":
        subprotocols.append(f"bearer.{token}")
    elif token is not None:
        raise ValueError(f"unknown credential placement {how!r}")
    return connect(
        server.ws_url + query,
        additional_headers=headers,
        subprotocols=subprotocols,
        origin=origin,
        open_timeout=open_timeout,
        close_timeout=5,
        proxy=None,
        **kwargs,
    )


async def recv_json(ws: ClientConnection, within: float = RECV_TIMEOUT) -> dict[str, Any]:
    async with asyncio.timeout(within):
        return json.loads(await ws.recv())


async def recv_until(
    ws: ClientConnection,
    predicate: Callable[[dict[str, Any]], bool],
    within: float = RECV_TIMEOUT,
) -> dict[str, Any]:
    """The first frame matching `predicate`, skipping others (live messages, pongs...)."""
    async with asyncio.timeout(within):
        while True:
            frame = json.loads(await ws.recv())
            if predicate(frame):
                return frame


async def request(ws: ClientConnection, frame: dict[str, Any], within: float = RECV_TIMEOUT):
    """Send a frame with a fresh ref and return the reply carrying that ref."""
    ref = uuid.uuid4().hex
    await ws.send(json.dumps({**frame, "ref": ref}))
    return await recv_until(ws, lambda f: f.get("ref") == ref, within)


async def join(ws: ClientConnection, room: str, within: float = RECV_TIMEOUT) -> dict[str, Any]:
    reply = await request(ws, {"type": "join", "room": room}, within)
    assert reply["type"] == "joined", reply
    return reply


async def post(ws: ClientConnection, room: str, body: str) -> int:
    """Send a chat message and return the id from its ack."""
    reply = await request(ws, {"type": "send", "room": room, "body": body})
    assert reply["type"] == "ack", reply
    return reply["id"]


async def next_message(ws: ClientConnection, within: float = RECV_TIMEOUT) -> dict[str, Any]:
    return await recv_until(ws, lambda f: f["type"] == "message", within)


async def message_by_id(
    ws: ClientConnection, message_id: int, within: float = RECV_TIMEOUT
) -> dict[str, Any]:
    """The live `message` frame with this id; other frames (own echoes...) are skipped."""
    return await recv_until(ws, lambda f: f["type"] == "message" and f["id"] == message_id, within)


async def read_until_closed(
    ws: ClientConnection, within: float = RECV_TIMEOUT
) -> tuple[list[dict[str, Any]], Close | None]:
    """Frames received until the server ended the connection, and the close frame it sent
    (None when it sent none: the connection was dropped, which clients see as 1006)."""
    frames = []
    async with asyncio.timeout(within):
        try:
            while True:
                frames.append(json.loads(await ws.recv()))
        except ConnectionClosed as closed:
            return frames, closed.rcvd


async def expect_closed(ws: ClientConnection, within: float = RECV_TIMEOUT) -> Close | None:
    """Read until the server ends the connection; the close frame it sent, None if none."""
    _, rcvd = await read_until_closed(ws, within)
    return rcvd


async def refused_with(connection: connect, within: float = RECV_TIMEOUT) -> int | None:
    """Open a connection the server must refuse and return its close code.

    Refusals complete the handshake and then close with a code, so the code is only seen
    from the first read; None means no close frame arrived at all.
    """
    async with connection as ws:
        rcvd = await expect_closed(ws, within)
        return None if rcvd is None else rcvd.code


async def drain(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Frames received within `seconds` (for asserting that something did *not* arrive)."""
    frames = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                frames.append(json.loads(await ws.recv()))
    return frames


def ids(messages: Iterable[dict[str, Any]]) -> list[int]:
    return [m["id"] for m in messages]
