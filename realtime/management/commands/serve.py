"""Run daphne with the project's WebSocket limits, so every start uses the same caps.

    python manage.py serve --bind 127.0.0.1 --port 8000 [--proxy-headers] [--require-backends]

The caps come from settings.REALTIME; daphne closes a socket with 1009 when a message
exceeds TRANSPORT_MAX_MESSAGE_BYTES, before the application reads it. On SIGTERM every open
socket is closed with 1001 (realtime.server).

Before daphne starts, the database, Redis (when REDIS_URL is set) and the channel layer's own
Redis servers (shards, Sentinel masters) are asked to answer, with /healthz's own checks
(config.health); each one that does not is named by host and port (never its credentials) in
a warning. The process starts anyway, answering 503 `unavailable` and closing sockets with
4013 until they answer, unless --require-backends makes it refuse to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from config.health import (
    channel_layer_servers,
    check_channel_layer,
    check_database,
    check_redis,
)
from realtime.conf import realtime_settings
from realtime.server import GracefulCommandLineInterface

# How long the start-up check waits for the backing services, all at once. Redis's own
# timeouts (config.health) are shorter; this bounds a database connect that hangs.
BACKEND_CHECK_SECONDS = 3.0
# Connections the kernel queues for accept(); it caps this at net.core.somaxconn (4096 on
# current kernels).
LISTEN_BACKLOG = 4096
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "oracle": 1521}


def _database_address() -> str:
    database = settings.DATABASES["default"]
    vendor = database["ENGINE"].rsplit(".", 1)[-1]
    if vendor == "sqlite3":
        return f"SQLite database {database['NAME']}"
    host = database.get("HOST") or "localhost"
    port = database.get("PORT") or _DEFAULT_PORTS.get(vendor, "default port")
    return f"{vendor} database at {_host_port(host, port)}"


def _redis_address(redis_url: str) -> str:
    url = urlsplit(redis_url)
    if url.scheme == "unix":
        return f"Redis at {url.path}"
    return f"Redis at {_host_port(url.hostname or 'localhost', url.port or 6379)}"


def _layer_address() -> str:
    servers = [
        _redis_address(host["address"])
        if "address" in host
        else f"Redis master {host['master_name']} (Sentinel)"
        for host in channel_layer_servers()
    ]
    return "channel layer: " + ", ".join(servers)


def _host_port(host: str, port: object) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _secrets() -> list[str]:
    found = [settings.DATABASES["default"].get("PASSWORD") or ""]
    if settings.REDIS_URL:
        found.append(urlsplit(settings.REDIS_URL).password or "")
    for host in channel_layer_servers():
        found.append(urlsplit(host.get("address", "")).password or "")
        found.append(host.get("password") or "")
        found.append(host.get("sentinel_kwargs", {}).get("password") or "")
    return [secret for secret in found if secret]


def _reason(exc: BaseException) -> str:
    """The error's type and first line, without anything that could be a credential."""
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    for secret in _secrets():
        text = text.replace(secret, "***")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _run_check(check: Callable[[], None], outcome: list[BaseException | None]) -> None:
    try:
        check()
    except Exception as exc:
        outcome.append(exc)
    else:
        outcome.append(None)
    finally:
        # Connections are per thread: close the one this check opened.
        connections.close_all()


def check_backends(timeout: float = BACKEND_CHECK_SECONDS) -> list[str]:
    """One warning for each backing service that does not answer within `timeout` seconds.

    Each check runs in a daemon thread, so one that hangs (a database host that drops
    packets) is abandoned at the deadline and cannot delay the start any longer.
    """
    checks: dict[str, Callable[[], None]] = {_database_address(): check_database}
    if settings.REDIS_URL:
        checks[_redis_address(settings.REDIS_URL)] = check_redis
    if channel_layer_servers():
        checks[_layer_address()] = check_channel_layer
    running = []
    for address, check in checks.items():
        outcome: list[BaseException | None] = []
        thread = threading.Thread(
            target=_run_check, args=(check, outcome), name="backend-check", daemon=True
        )
        thread.start()
        running.append((address, thread, outcome))
    deadline = time.monotonic() + timeout
    warnings = []
    for address, thread, outcome in running:
        thread.join(max(0.0, deadline - time.monotonic()))
        if not outcome:
            warnings.append(f"{address} did not answer within {timeout:g} s.")
        elif outcome[0] is not None:
            warnings.append(f"{address} does not answer ({_reason(outcome[0])}).")
    return warnings


class Command(BaseCommand):
    help = "Serve HTTP and WebSockets with daphne, using the project's size and time limits."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help="trust X-Forwarded-For from the proxy in front (nginx must set, not append it)",
        )
        parser.add_argument(
            "--access-log", default="-", help="file for access lines, - for stdout"
        )
        parser.add_argument(
            "--require-backends",
            action="store_true",
            help="refuse to start (exit 1) when the database or Redis does not answer; by "
            "default the process starts and serves 503/4013 until they do",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = check_backends()
        for problem in problems:
            self.stderr.write(self.style.WARNING(f"Warning: {problem}"))
        if problems and options["require_backends"]:
            raise CommandError(
                "Not starting: a backing service does not answer (--require-backends)."
            )
        if problems:
            self.stderr.write(
                "Starting anyway: until it answers, API requests that need it get 503 "
                "`unavailable` and sockets close with 4013; /healthz answers 503."
            )
        limits = realtime_settings()
        cap = str(limits.TRANSPORT_MAX_MESSAGE_BYTES)
        interface = options["bind"].strip("[]").replace(":", r"\:")
        argv = [
            # Twisted listens with a backlog of 50: a reconnect wave overflows it, and the
            # kernel drops the SYNs, which clients resend only 1 s and 3 s later.
            "-e", f"tcp:port={options['port']}:interface={interface}:backlog={LISTEN_BACKLOG}",
            "--websocket-max-message-size", cap,
            "--websocket-max-frame-size", cap,
            # An idle socket is pinged every 20 s and dropped after 30 s without a pong,
            # well inside the 75 s proxy_read_timeout of deploy/nginx/chat-locations.conf.
            "--ping-interval", "20",
            "--ping-timeout", "30",
            # A handshake must complete within this, so half-open connections cannot pile
            # up; a reconnect wave waits its turn inside it (realtime.admission).
            "--websocket_connect_timeout", str(settings.WS_HANDSHAKE_TIMEOUT_SECONDS),
            "--application-close-timeout", "10",
            "--access-log", options["access_log"],
        ]  # fmt: skip
        if options["proxy_headers"]:
            argv.append("--proxy-headers")
        # A wildcard bind is reached through a real address; this machine's own works.
        wildcards = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}  # noqa: S104 (names, not binds)
        shown = wildcards.get(options["bind"], options["bind"])
        base = f"http://{shown}:{options['port']}"
        self.stdout.write(
            f"Chat on {base}/  (open it in a browser)\n"
            f"  API:       {base}/api/auth/token/  (POST username, password)\n"
            f"  Admin:     {base}/admin/\n"
            f"  WebSocket: ws://{shown}:{options['port']}/ws/chat/\n"
            f"  Health:    {base}/healthz"
        )
        if shown != options["bind"]:
            self.stdout.write(
                "  Other machines use this host's address, once it is in ALLOWED_HOSTS."
            )
        GracefulCommandLineInterface().run([*argv, "config.asgi:application"])
