"""Run daphne with the project's WebSocket limits, so every start uses the same caps.

    python manage.py serve --bind 127.0.0.1 --port 8000 [--proxy-headers]

The caps come from settings.REALTIME; daphne closes a socket with 1009 when a message
exceeds TRANSPORT_MAX_MESSAGE_BYTES, before the application reads it. On SIGTERM every open
socket is closed with 1001 (realtime.server).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from realtime.conf import realtime_settings
from realtime.server import GracefulCommandLineInterface


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

    def handle(self, *args: Any, **options: Any) -> None:
        limits = realtime_settings()
        cap = str(limits.TRANSPORT_MAX_MESSAGE_BYTES)
        argv = [
            "--bind", options["bind"],
            "--port", str(options["port"]),
            "--websocket-max-message-size", cap,
            "--websocket-max-frame-size", cap,
            # An idle socket is pinged every 20 s and dropped after 30 s without a pong,
            # well inside the 75 s proxy_read_timeout of deploy/nginx/chat-locations.conf.
            "--ping-interval", "20",
            "--ping-timeout", "30",
            # A handshake must complete in 5 s, so half-open connections cannot pile up.
            "--websocket_connect_timeout", "5",
            "--application-close-timeout", "10",
            "--access-log", options["access_log"],
        ]  # fmt: skip
        if options["proxy_headers"]:
            argv.append("--proxy-headers")
        base = f"http://{options['bind']}:{options['port']}"
        self.stdout.write(
            f"Chat on {base}/\n"
            f"  API:       {base}/api/auth/token/  (POST username, password)\n"
            f"  Admin:     {base}/admin/\n"
            f"  WebSocket: ws://{options['bind']}:{options['port']}/ws/chat/\n"
            f"  Health:    {base}/healthz"
        )
        GracefulCommandLineInterface().run([*argv, "config.asgi:application"])
