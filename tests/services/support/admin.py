"""The Django admin driven over real HTTP, as an administrator's browser would: sign in with
the CSRF cookie, open a change form, submit it with some fields changed."""

from __future__ import annotations

import http.cookiejar
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING

from tests.services.support.common import HTTP_TIMEOUT, PASSWORD, PYTHON, ROOT, unique_name

if TYPE_CHECKING:
    from tests.services.support.daphne import Server


class _FormParser(HTMLParser):
    """The successful controls of each <form method=post>, as a browser submits them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[list[tuple[str, str]]] = []
        self.fields: list[tuple[str, str]] = []
        self.in_form = False
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and attributes.get("method", "").lower() == "post":
            self.in_form = True
            self.fields = []
            self.forms.append(self.fields)
        if not self.in_form:
            return
        name = attributes.get("name")
        if tag == "input" and name and "disabled" not in attributes:
            kind = attributes.get("type", "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in attributes:
                return
            if kind in ("submit", "button", "image", "file"):
                return
            self.fields.append((name, attributes.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in attributes:
            self.fields.append((self._select, attributes.get("value", "")))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, "".join(self._text)))
            self._textarea = None
        elif tag == "form" and self.in_form:
            self.in_form = False


def form_fields(html: str) -> list[tuple[str, str]]:
    """The fields of the page's main form: the POST form with the most controls (admin pages
    also hold a small sign-out form)."""
    parser = _FormParser()
    parser.feed(html)
    return max(parser.forms, key=len, default=[])


@dataclass
class AdminResponse:
    status: int
    url: str
    text: str


@dataclass
class AdminClient:
    """One administrator's browser session against a server's /admin/."""

    server: Server
    username: str
    password: str = PASSWORD
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar)
        )

    def _open(self, path: str, data: list[tuple[str, str]] | None = None) -> AdminResponse:
        url = self.server.base_url + path
        body = None if data is None else urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(url, data=body)  # noqa: S310 (http to 127.0.0.1)
        if body is not None:
            # Django's CSRF check wants a same-origin Referer on unsafe requests.
            request.add_header("Referer", url)
        try:
            with self.opener.open(request, timeout=HTTP_TIMEOUT) as response:
                return AdminResponse(response.status, response.url, response.read().decode())
        except urllib.error.HTTPError as error:
            return AdminResponse(error.code, url, error.read().decode(errors="replace"))

    def get(self, path: str) -> AdminResponse:
        return self._open(path)

    def submit(self, path: str, changes: dict[str, str | None]) -> AdminResponse:
        """Open the form at `path` and submit it with `changes` (None unticks or removes)."""
        page = self.get(path)
        assert page.status == 200, (page.status, page.text[:500])
        fields = [(name, value) for name, value in form_fields(page.text) if name not in changes]
        fields += [(name, value) for name, value in changes.items() if value is not None]
        return self._open(path, fields)

    def login(self) -> AdminClient:
        response = self.submit(
            "/admin/login/?next=/admin/",
            {"username": self.username, "password": self.password},
        )
        assert response.status == 200, (response.status, response.text[:500])
        assert response.url.endswith("/admin/"), "the admin login form refused the credentials"
        return self


def create_superuser(server: Server) -> AdminClient:
    """A new superuser in the server's database (manage.py createsuperuser), signed in."""
    username = unique_name("admin")
    result = subprocess.run(
        [
            PYTHON,
            "manage.py",
            "createsuperuser",
            "--noinput",
            "--username",
            username,
            "--email",
            f"{username}@example.com",
        ],
        cwd=ROOT,
        env={**server.env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return AdminClient(server, username).login()


def django_shell(server: Server, code: str) -> str:
    """Run Python in `manage.py shell` against the server's database, as an operator would;
    its output. Queryset updates made this way send no signals: a lost event, on purpose."""
    result = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
