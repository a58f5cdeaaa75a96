"""Tier 3: the chat page in a real browser (Playwright driving Debian's /usr/bin/chromium)
against a real daphne, Redis and PostgreSQL (the fixtures of tests/services).

Every page a test opens records what a reviewer would look for: browser console errors,
JavaScript dialogs (an `alert` would mean injected code ran), every request URL and every
WebSocket URL (no token may travel in one). A failing test saves a screenshot of each of its
pages under var/test-results/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.services.conftest import *  # noqa: F403  (real servers: PostgreSQL, Redis, daphne)
from tests.services.conftest import _server_factory
from tests.services.support.api import Account, Api
from tests.services.support.common import PASSWORD, ROOT
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "var" / "test-results" / "screenshots"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 800}
# Long enough for a reconnect with backoff on a loaded two-core machine.
expect.set_options(timeout=15_000)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    found = shutil.which("chromium") or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if found is None:
        pytest.fail(
            "Chromium is not installed. `make test` installs it when run as root "
            "(apt-get install chromium fonts-liberation), or install it yourself.",
            pytrace=False,
        )
    return found


# Per module, not per session: Playwright's sync API keeps an event loop running in the
# test thread while it is open, and async_to_sync (tier 1) and pytest-asyncio (tier 2)
# refuse to run beside one. pyproject.toml's testpaths also puts this tier last.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium_executable: str) -> Iterator[Browser]:
    args = ["--disable-background-networking", "--disable-gpu", "--disable-dev-shm-usage"]
    if os.geteuid() == 0:
        # Chromium refuses to run its sandbox as root.
        args.append("--no-sandbox")
    browser = playwright.chromium.launch(
        executable_path=chromium_executable, headless=True, args=args
    )
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def site(
    services_dir: Path, server_env: dict[str, str], redis_server: RedisServer
) -> Iterator[Server]:
    """The chat served as `make run` serves it: daphne serving its own static files."""
    started: list[Server] = []
    try:
        start = _server_factory(services_dir, server_env, started)
        yield start(redis_server.url, name="site", SERVE_STATIC="true")
    finally:
        for server in reversed(started):
            server.stop()


@dataclass
class Watched:
    """A page, and what it did."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)


@pytest.fixture
def open_page(
    browser: Browser, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Watched]]:
    """open_page(server, viewport=LAPTOP) -> Watched: a page in a fresh browser context."""
    contexts: list[BrowserContext] = []
    watched: list[Watched] = []

    def open_(server: Server, viewport: dict[str, int] = LAPTOP) -> Watched:
        context = browser.new_context(viewport=viewport, base_url=server.base_url)
        contexts.append(context)
        page = context.new_page()
        seen = Watched(page)
        page.on("console", lambda m: m.type == "error" and seen.console_errors.append(m.text))
        page.on("pageerror", lambda e: seen.console_errors.append(str(e)))

        def on_dialog(dialog) -> None:
            seen.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("request", lambda r: seen.urls.append(r.url))
        page.on("websocket", lambda ws: seen.urls.append(ws.url))
        watched.append(seen)
        return seen

    yield open_
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        for n, seen in enumerate(watched):
            path = SCREENSHOTS / f"{name}-{n}.png"
            try:
                seen.page.screenshot(path=path, full_page=True)
            except Exception as exc:  # a crashed page must not hide the test's failure
                print(f"no screenshot of page {n}: {exc}")
            else:
                print(f"screenshot: {path}")
    for context in contexts:
        context.close()


def sign_in(page: Page, account: Account) -> None:
    """Sign in through the page's form, as a person would, and wait for the socket."""
    page.goto("/")
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Connected"))


def open_room(page: Page, title: str) -> None:
    page.get_by_role("navigation", name="Rooms").get_by_role(
        "button", name=re.compile(re.escape(title))
    ).click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()


@pytest.fixture
def people(site: Server) -> Callable[[int], tuple[list[Account], str]]:
    """people(n) -> (n accounts, a public room they can all join)."""

    def make(count: int) -> tuple[list[Account], str]:
        api = Api(site)
        accounts = [api.account("person") for _ in range(count)]
        return accounts, api.room(accounts[0], prefix="talk")

    return make
