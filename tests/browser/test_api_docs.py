"""/api/docs/ in a real browser: Swagger UI renders the schema under the project's strict
Content-Security-Policy (config/headers.py), with every file from this server (the sidecar's
static files, no CDN) and nothing refused, and "Try it out" calls the API with a token."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Watched
from tests.services.support.api import Api
from tests.services.support.daphne import Server

pytestmark = [pytest.mark.services, pytest.mark.browser]

ROOMS = "#operations-rooms-rooms_retrieve"


def test_docs_page_renders_the_schema_within_the_csp(site: Server, open_page) -> None:
    seen: Watched = open_page(site)
    page = seen.page

    response = page.goto("/api/docs/")

    assert response is not None
    assert response.status == 200
    assert "script-src 'self';" in response.headers["content-security-policy"]
    expect(page.locator(".info .title")).to_contain_text("Chat REST API")
    expect(page.locator(".opblock")).to_have_count(15)
    assert seen.console_errors == []
    origin = urlsplit(site.base_url).netloc
    assert {urlsplit(url).netloc for url in seen.urls} == {origin}, seen.urls
    assert any("/static/drf_spectacular_sidecar/" in url for url in seen.urls)

    # Try it out, with a token given to the Authorize dialog.
    account = Api(site).account("docs")
    page.locator("button.authorize").first.click()
    page.locator(".dialog-ux input").fill(account.access)
    page.locator(".dialog-ux button.authorize").click()
    page.locator(".dialog-ux button.btn-done").click()
    page.locator(f"{ROOMS} .opblock-summary").click()
    page.locator(f"{ROOMS} .try-out__btn").click()
    page.locator(f"{ROOMS} button.execute").click()
    live = page.locator(f"{ROOMS} .live-responses-table .response .response-col_status")
    expect(live).to_have_text("200")
    body = page.locator(f"{ROOMS} .live-responses-table .response-col_description pre").first
    assert "rooms" in json.loads(body.inner_text())
    assert seen.console_errors == []
