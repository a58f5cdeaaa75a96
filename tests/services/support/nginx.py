"""A real nginx in front of daphne, serving the shipped deploy/nginx/ directives.

The configuration is rendered by deploy.stack.nginx, the code `make stack` serves the chat
with, so the tests and the local production topology include the shipped files the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from deploy.stack import nginx as rendering
from deploy.stack.common import StackError
from tests.services.support.api import http_request
from tests.services.support.common import (
    DEPLOY_NGINX,
    HOST,
    NGINX_START_TIMEOUT,
    STOP_TIMEOUT,
    ChatEndpoint,
    ServiceError,
    free_port,
    tail,
    wait_until,
)
from tests.services.support.daphne import Server

GENERATED = f"Generated for one test run; the directives under test are in {DEPLOY_NGINX}."


def nginx_binary() -> str:
    """Path of nginx (Debian installs it in /usr/sbin, often not on a user's PATH)."""
    try:
        return rendering.nginx_binary()
    except StackError as exc:
        raise ServiceError(str(exc)) from None


@dataclass
class Nginx(ChatEndpoint):
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
        return rendering.main_config(
            self.workdir,
            self.http_block(),
            error_log=self.error_log,
            comment=GENERATED,
        )

    def write_files(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf_file.write_text(self.config())

    def _command(self, *extra: str) -> list[str]:
        return rendering.nginx_command(
            self.binary, self.workdir, self.conf_file, self.error_log, *extra
        )

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


@dataclass
class SiteNginx(Nginx):
    """nginx serving deploy/nginx/chat.conf itself, included as conf.d/ includes it.

    Rendered by deploy.stack.nginx.Site, as `make stack` renders it: only what belongs to
    one machine is rewritten in a copy of chat.conf (the two listen ports, the daphne ports,
    the certificate and the log directory); the files it includes are the shipped ones,
    reached through chat/ as /etc/nginx/chat/ holds them in production. `port` stands for 80
    and `https_port` for 443; both daphne ports of the upstream are `upstream`'s. The
    certificate names chat.example.com.
    """

    https_port: int = field(default_factory=free_port)

    @property
    def ws_url(self) -> str:
        return f"wss://{HOST}:{self.https_port}/ws/chat/"

    def site(self) -> rendering.Site:
        return rendering.Site(
            workdir=self.workdir,
            http_port=self.port,
            https_port=self.https_port,
            daphne_ports=(self.upstream.port, self.upstream.port),
            comment=GENERATED,
        )

    @property
    def access_log(self) -> Path:
        return self.site().access_log

    def config(self) -> str:
        return self.site().main()

    def write_files(self) -> None:
        try:
            self.site().write()
        except StackError as exc:
            raise ServiceError(str(exc)) from None
