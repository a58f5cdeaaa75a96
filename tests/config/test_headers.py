"""Security headers: the page and every other response forbid inline and foreign content."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, str]:
    directives = (
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )
    return {name: value for name, value in directives}


@pytest.mark.parametrize("path", ["/", "/api/auth/me/", "/admin/login/", "/healthz"])
def test_every_response_carries_a_strict_policy(client, path):
    response = client.get(path, HTTP_HOST="127.0.0.1:8765")
    directives = policy(response)
    # No 'unsafe-inline', no 'unsafe-eval', no other host: an injected <script> cannot run.
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["connect-src"] == "'self' ws://127.0.0.1:8765 wss://127.0.0.1:8765"
    assert "camera=()" in response["Permissions-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_the_page_loads_its_code_from_static_files_only(client):
    page = client.get("/", HTTP_HOST="127.0.0.1:8765").content.decode()
    assert "<script>" not in page
    assert 'style="' not in page
