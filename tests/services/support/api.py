"""Plain HTTP against a server: stdlib requests, accounts and rooms through the REST API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.services.support.common import HTTP_TIMEOUT, PASSWORD, unique_name

# Straight to 127.0.0.1 even when the environment names a proxy.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

if TYPE_CHECKING:  # annotations only: both modules import this one
    from tests.services.support.daphne import Server
    from tests.services.support.nginx import Nginx


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
