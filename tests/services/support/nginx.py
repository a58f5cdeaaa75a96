"""A real nginx in front of daphne, serving the shipped deploy/nginx/ directives."""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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
