"""deploy/nginx/ rendered for one machine: local ports and paths, a self-signed certificate.

`make stack` serves the chat through this, and tests/services/support/nginx.py renders the
shipped configuration for its tests with the same code. Only what belongs to one machine
is rewritten, in copies: in chat.conf the two listen ports, the daphne ports of
`upstream chat_daphne`, the certificate and the log files; in chat-locations.conf the
`/static/` alias (only when a static root is given). Every other directive is the shipped
one, and the files that need no change are included through links to deploy/nginx/.

The layout of a rendered site, in `workdir`:

    nginx.conf      the main file (Debian's /etc/nginx/nginx.conf): pid, temp paths, http {}
    site.conf       chat.conf, rendered (what /etc/nginx/conf.d/chat.conf links to)
    chat/           what /etc/nginx/chat/ holds: links to, or renderings of, deploy/nginx/
    fullchain.pem   the certificate (and privkey.pem, its key)
    log/            chat.access.log; error.log is in `workdir`
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from deploy.stack.common import HOST, StackError

# The shipped configuration: chat.conf and the two files it includes.
DEPLOY_NGINX = Path(__file__).resolve().parents[1] / "nginx"
# Where chat-locations.conf serves /static/ from on a server (collectstatic's STATIC_ROOT).
SHIPPED_STATIC_ALIAS = "alias /srv/chat/staticfiles/;"
SHIPPED_LOG_DIR = "/var/log/nginx/"
TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
# Debian's nginx.conf includes these types (package nginx-common): without them every static
# file is served as text/plain, and a browser refuses such a stylesheet or script.
MIME_TYPES = Path("/etc/nginx/mime.types")
# The few types the chat's static files need, where no mime.types is installed.
FALLBACK_TYPES = """\
    types {
        text/html html; text/css css; application/javascript js; application/json json;
        image/svg+xml svg; image/png png; image/gif gif; image/x-icon ico;
        font/woff woff; font/woff2 woff2; text/plain txt map;
    }
"""


def nginx_binary() -> str:
    """Path of nginx (Debian installs it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/bin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise StackError(
            "nginx is not installed. `make test` and `make stack` install it when run as root "
            "(apt-get install nginx), or install it yourself: sudo apt-get install nginx"
        )
    return found


def quoted(path: Path | str) -> str:
    """A path as an nginx string."""
    text = str(path)
    if any(c in text for c in '"\\;{}$') or any(c.isspace() and c != " " for c in text):
        raise StackError(f"nginx cannot be given the path {text!r}: choose another directory")
    return f'"{text}"'


def main_config(workdir: Path, http_block: str, *, error_log: Path, comment: str) -> str:
    """The main file, standing in for Debian's /etc/nginx/nginx.conf, with its state (pid,
    temp paths) in `workdir` rather than /var and /run, and `http_block` inside http {}."""
    # Run as root, nginx would hand its workers to `nobody`, who cannot enter a private
    # (0700) directory such as pytest's temporary directories or a checkout under /root.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp_paths = "".join(
        f"    {kind}_temp_path {quoted(workdir / kind)};\n" for kind in TEMP_KINDS
    )
    types = f"    include {quoted(MIME_TYPES)};\n" if MIME_TYPES.is_file() else FALLBACK_TYPES
    return (
        f"# {comment}\n"
        f"{user}worker_processes 1;\n"
        f"pid {quoted(workdir / 'nginx.pid')};\n"
        f"error_log {quoted(error_log)} warn;\n"
        "events { worker_connections 512; }\n\n"
        f"http {{\n{temp_paths}{types}    default_type application/octet-stream;\n\n"
        f"{http_block}}}\n"
    )


def nginx_command(
    binary: str, workdir: Path, conf_file: Path, error_log: Path, *extra: str
) -> list[str]:
    return [
        binary,
        "-p", f"{workdir}/",
        # Startup errors too, before the configuration's error_log applies: never /var/log.
        "-e", str(error_log),
        "-c", str(conf_file),
        *extra,
    ]  # fmt: skip


def self_signed_certificate(
    cert_file: Path, key_file: Path, names: tuple[str, ...], *, days: int = 1
) -> None:
    """A certificate for `names` (host names or IP addresses, the first one its subject),
    signed by its own key, as PEM files. Clients trust it by loading cert_file as a CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def certificate_still_good(cert_file: Path, names: tuple[str, ...], *, hours: int = 24) -> bool:
    """Whether cert_file names exactly `names` and stays valid for `hours` more."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        alternatives = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    named = {str(v) for v in alternatives.get_values_for_type(x509.DNSName)}
    named |= {str(v) for v in alternatives.get_values_for_type(x509.IPAddress)}
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=hours)
    return named == set(names) and certificate.not_valid_after_utc > soon


def _replace(text: str, shipped: str, replacement: str, file: str) -> str:
    if shipped not in text:
        raise StackError(
            f"{file} no longer contains {shipped!r}: update deploy/stack/nginx.py, which "
            "renders it for local ports and paths"
        )
    return text.replace(shipped, replacement)


@dataclass(frozen=True)
class Site:
    """deploy/nginx/chat.conf served on this machine.

    `http_port` stands for 80 and `https_port` for 443; the two `upstream chat_daphne`
    servers (8001 and 8002) become `daphne_ports`. With `static_root`, /static/ is served
    from there (collectstatic's STATIC_ROOT) instead of /srv/chat/staticfiles/. A certificate
    for `certificate_names` is generated, or kept when `keep_certificate` and it still fits.
    """

    workdir: Path
    http_port: int
    https_port: int
    daphne_ports: tuple[int, int]
    static_root: Path | None = None
    certificate_names: tuple[str, ...] = ("chat.example.com",)
    certificate_days: int = 1
    keep_certificate: bool = False
    comment: str = f"Generated for this machine; the shipped directives are in {DEPLOY_NGINX}."

    @property
    def conf_file(self) -> Path:
        return self.workdir / "nginx.conf"

    @property
    def site_file(self) -> Path:
        return self.workdir / "site.conf"

    @property
    def includes_dir(self) -> Path:
        return self.workdir / "chat"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "log"

    @property
    def access_log(self) -> Path:
        return self.log_dir / "chat.access.log"

    @property
    def error_log(self) -> Path:
        return self.workdir / "error.log"

    @property
    def cert_file(self) -> Path:
        return self.workdir / "fullchain.pem"

    @property
    def key_file(self) -> Path:
        return self.workdir / "privkey.pem"

    def main(self) -> str:
        """nginx.conf: chat.conf is included from http {}, as conf.d/ is on Debian."""
        return main_config(
            self.workdir,
            f"    include {quoted(self.site_file)};\n",
            error_log=self.error_log,
            comment=self.comment,
        )

    def site(self) -> str:
        """chat.conf with this machine's ports, certificate and log directory."""
        file = "deploy/nginx/chat.conf"
        site = (DEPLOY_NGINX / "chat.conf").read_text()
        first, second = self.daphne_ports
        machine_specific = {
            "listen 80;": f"listen {HOST}:{self.http_port};",
            "listen 443 ": f"listen {HOST}:{self.https_port} ",
            "127.0.0.1:8001 ": f"{HOST}:{first} ",
            "127.0.0.1:8002 ": f"{HOST}:{second} ",
            "/etc/ssl/chat/fullchain.pem": quoted(self.cert_file),
            "/etc/ssl/chat/privkey.pem": quoted(self.key_file),
        }
        for shipped, replacement in machine_specific.items():
            site = _replace(site, shipped, replacement, file)
        # Every log file of the site, whatever its name, goes to log_dir.
        if SHIPPED_LOG_DIR not in site:
            raise StackError(f"{file} no longer logs to {SHIPPED_LOG_DIR}: update deploy/stack")
        return re.sub(
            re.escape(SHIPPED_LOG_DIR) + r"([^\s;\"]+)",
            lambda m: quoted(self.log_dir / m[1]),
            site,
        )

    def locations(self) -> str | None:
        """chat-locations.conf with /static/ served from static_root; None: unchanged."""
        if self.static_root is None:
            return None
        shipped = (DEPLOY_NGINX / "chat-locations.conf").read_text()
        alias = f"alias {quoted(f'{self.static_root}/')};"
        return _replace(shipped, SHIPPED_STATIC_ALIAS, alias, "deploy/nginx/chat-locations.conf")

    def write(self) -> None:
        """Write every file of the layout (the certificate too), ready for `nginx -t` or a
        start. chat/ is rebuilt each time, so it always follows deploy/nginx/."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        names = self.certificate_names
        if not (self.keep_certificate and certificate_still_good(self.cert_file, names)):
            self_signed_certificate(
                self.cert_file, self.key_file, names, days=self.certificate_days
            )
        rendered = {"chat-locations.conf": self.locations()}
        if self.includes_dir.is_symlink() or self.includes_dir.is_file():
            self.includes_dir.unlink()
        elif self.includes_dir.exists():
            shutil.rmtree(self.includes_dir)
        self.includes_dir.mkdir()
        for shipped in sorted(DEPLOY_NGINX.glob("*.conf")):
            target = self.includes_dir / shipped.name
            text = rendered.get(shipped.name)
            if text is None:
                target.symlink_to(shipped)
            else:
                target.write_text(text)
        self.site_file.write_text(self.site())
        self.conf_file.write_text(self.main())

    def command(self, binary: str, *extra: str) -> list[str]:
        """nginx's command line for this site (`-t` to check it; `-g "daemon off;"` to run
        it in the foreground)."""
        return nginx_command(binary, self.workdir, self.conf_file, self.error_log, *extra)
