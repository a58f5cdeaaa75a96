"""Request bodies over the application's limit, sent straight to daphne with no nginx in front.

nginx refuses bodies over 64 KiB itself (client_max_body_size); these tests are what a client
that reaches a daphne port directly gets: 413, never a 500 with a traceback in the log.
Each runs under `manage.py serve` and plain `python -m daphne` (`either_server`).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterable
from typing import Any

import pytest

from tests.services.support.api import Api, HttpResponse
from tests.services.support.common import HOST, HTTP_TIMEOUT, unique_name
from tests.services.support.daphne import Server

pytestmark = [pytest.mark.services]

# What the defect report sent: over Django's default limit of 2.5 MB, let alone ours.
THREE_MB = 3 * 1024 * 1024
# Under the application's 256 KiB, far over anything a real request carries.
UNDER_THE_LIMIT = 200 * 1024
# Django's CSRF check accepts the bare 32-character secret, in the cookie and in the form.
CSRF_SECRET = "a" * 32


def _post(
    server: Server,
    path: str,
    body: bytes | Iterable[bytes],
    content_type: str = "application/json",
    token: str | None = None,
    cookie: str | None = None,
) -> HttpResponse:
    """POST a raw body; an iterable is sent chunked, with no Content-Length at all."""
    connection = http.client.HTTPConnection(HOST, server.port, timeout=HTTP_TIMEOUT)
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if cookie is not None:
        headers["Cookie"] = cookie
    try:
        chunked = not isinstance(body, bytes)
        connection.request("POST", path, body=body, headers=headers, encode_chunked=chunked)
        response = connection.getresponse()
        raw = response.read()
        content_type = response.getheader("Content-Type") or ""
    finally:
        connection.close()
    parsed: Any = json.loads(raw) if content_type == "application/json" else raw.decode()
    return HttpResponse(response.status, parsed)


def _json(**fields: str) -> bytes:
    return json.dumps(fields).encode()


def _new_records(server: Server, seen: int) -> list[dict[str, Any]]:
    return server.log_records()[seen:]


def _assert_logged_once_without_traceback(server: Server, seen: int, path: str) -> None:
    # django.request writes the line before daphne sends the response: no wait is needed.
    records = _new_records(server, seen)
    too_large = [r for r in records if r.get("status_code") == 413 and path in r["message"]]
    assert len(too_large) == 1, f"{records}\n{server.output()}"
    assert too_large[0]["level"] == "WARNING"
    assert "exception" not in too_large[0]
    assert not [r for r in records if r["level"] in ("ERROR", "CRITICAL")], records
    assert "Traceback" not in json.dumps(records)


def _assert_too_large_envelope(response: HttpResponse, server: Server) -> None:
    assert response.status == 413, f"{response.status} {response.body!r:.300}\n{server.output()}"
    assert response.body["error"]["code"] == "too_large", response.body
    assert response.body["error"]["message"]


def test_three_megabytes_of_json_at_the_login_is_413_too_large(either_server: Server) -> None:
    seen = len(either_server.log_records())

    body = _json(username=unique_name("big"), password="x" * THREE_MB)
    response = _post(either_server, "/api/auth/token/", body)

    _assert_too_large_envelope(response, either_server)
    _assert_logged_once_without_traceback(either_server, seen, "/api/auth/token/")
    assert either_server.alive()


def test_a_login_body_under_the_limit_is_answered_by_the_login(either_server: Server) -> None:
    body = _json(username=unique_name("big"), password="x" * UNDER_THE_LIMIT)

    response = _post(either_server, "/api/auth/token/", body)

    assert response.status == 401, response.body
    assert response.body["error"]["code"] == "invalid_credentials"


def test_three_megabytes_of_json_at_room_creation_is_413_too_large(
    either_server: Server,
) -> None:
    account = Api(either_server).account("bigroom")
    seen = len(either_server.log_records())

    body = _json(slug=unique_name("big"), title="t" * THREE_MB)
    response = _post(either_server, "/api/rooms/", body, token=account.access)

    _assert_too_large_envelope(response, either_server)
    _assert_logged_once_without_traceback(either_server, seen, "/api/rooms/")


def test_a_room_body_under_the_limit_is_validated(either_server: Server) -> None:
    account = Api(either_server).account("bigroom")
    body = _json(slug=unique_name("big"), title="t" * UNDER_THE_LIMIT)

    response = _post(either_server, "/api/rooms/", body, token=account.access)

    assert response.status == 400, response.body
    assert response.body["error"]["fields"]["title"][0]["code"] == "max_length"


def test_a_chunked_body_without_content_length_is_413_too(either_server: Server) -> None:
    # Nothing announces the size: the limit must hold on what actually arrived.
    account = Api(either_server).account("chunked")
    body = _json(slug=unique_name("big"), title="t" * THREE_MB)
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))

    response = _post(either_server, "/api/rooms/", chunks, token=account.access)

    _assert_too_large_envelope(response, either_server)


def _admin_login_form(password: str) -> tuple[bytes, str]:
    """A login form that passes Django's CSRF check (a cookie and the same secret in the
    form, as a browser that loaded the page sends), so the form itself gets read."""
    return (
        f"csrfmiddlewaretoken={CSRF_SECRET}&username=root&password={password}".encode(),
        f"csrftoken={CSRF_SECRET}",
    )


def test_an_oversized_admin_form_is_a_plain_413(either_server: Server) -> None:
    seen = len(either_server.log_records())
    form, cookie = _admin_login_form("x" * THREE_MB)

    response = _post(
        either_server,
        "/admin/login/",
        form,
        content_type="application/x-www-form-urlencoded",
        cookie=cookie,
    )

    assert response.status == 413, f"{response.status}\n{either_server.output()}"
    assert isinstance(response.body, str)
    assert "xxxx" not in response.body
    _assert_logged_once_without_traceback(either_server, seen, "/admin/login/")


def test_an_admin_form_under_the_limit_is_answered_by_the_login_form(
    either_server: Server,
) -> None:
    form, cookie = _admin_login_form("x" * UNDER_THE_LIMIT)

    response = _post(
        either_server,
        "/admin/login/",
        form,
        content_type="application/x-www-form-urlencoded",
        cookie=cookie,
    )

    # No such staff account: the form again, with its error.
    assert response.status == 200, f"{response.status}\n{either_server.output()}"
    assert "Please enter the correct username and password" in response.body
