"""The chat page, used by people in a real browser: chatting, presence and typing, safety
(markup shown as text, a strict CSP, no token in any URL), reconnecting and resuming through
a Redis outage and a daphne restart, sending while offline, keyboard-only use, phone width."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, Watched, open_room, sign_in
from tests.services.support.api import Account, Api
from tests.services.support.common import PASSWORD, ROOT
from tests.services.support.daphne import Server
from tests.services.support.redis_server import RedisServer
from tests.services.support.sockets import join, request, ws_connect

pytestmark = [pytest.mark.services, pytest.mark.browser]

# The README's screenshots are taken by `make screenshots` (UPDATE_SCREENSHOTS=1); an ordinary
# run writes its copies under var/, leaving the checkout as it found it.
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS")
    else ROOT / "var" / "test-results" / "screenshots"
)


def log(page: Page):
    return page.get_by_role("log")


def composer(page: Page):
    return page.get_by_label("Message")


def shown_seqs(page: Page) -> list[int]:
    return [
        int(seq)
        for seq in log(page)
        .locator("[data-seq]")
        .evaluate_all("els => els.map(e => e.dataset.seq)")
    ]


def say_elsewhere(server: Server, account: Account, room: str, bodies: list[str]) -> list[int]:
    """Another client (a websocket on `server`) says each body; their seqs."""

    async def talk() -> list[int]:
        async with ws_connect(server, token=account.access) as ws:
            await join(ws, room)
            seqs = []
            for body in bodies:
                ack = await request(ws, {"type": "send", "room": room, "body": body})
                assert ack["type"] == "ack", ack
                seqs.append(ack["seq"])
            return seqs

    # Playwright's sync API owns this thread's event loop: the client gets its own thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, talk()).result(timeout=60)


# A reconnect after a few failed attempts may wait its full-jitter backoff (up to 8 s by the
# fourth attempt) plus the server's start: longer than other waits.
RECONNECTED_WITHIN_MS = 45_000
# What the browser itself reports while the server is down on purpose.
SERVER_DOWN = re.compile(r"ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|WebSocket connection to")


def assert_clean(*pages: Watched, server_was_down: bool = False) -> None:
    for seen in pages:
        assert seen.dialogs == [], "a dialog opened: injected code ran"
        errors = seen.console_errors
        if server_was_down:
            errors = [error for error in errors if not SERVER_DOWN.search(error)]
        assert errors == []


# --- Chatting ----------------------------------------------------------------------------------


def test_two_people_chat_and_see_each_others_presence_and_typing(
    open_page: Callable[..., Watched], site: Server, people
) -> None:
    (alice, bob), room = people(2)
    a, b = open_page(site), open_page(site)
    sign_in(a.page, alice)
    open_room(a.page, room)
    sign_in(b.page, bob)
    open_room(b.page, room)

    expect(a.page.get_by_role("list", name="People here")).to_contain_text(bob.username)
    expect(b.page.get_by_role("list", name="People here")).to_contain_text(alice.username)

    composer(b.page).press_sequentially("hel")
    expect(a.page.get_by_text(f"{bob.username} is typing")).to_be_visible()
    composer(b.page).fill("hello alice\nhow are you?")
    composer(b.page).press("Enter")
    expect(log(a.page)).to_contain_text("hello alice")
    expect(log(b.page)).to_contain_text("hello alice")

    composer(a.page).fill("fine, thanks")
    a.page.get_by_role("button", name="Send").click()
    expect(log(b.page)).to_contain_text("fine, thanks")
    expect(log(a.page).get_by_text("Sending…")).to_have_count(0)

    # Shift+Enter kept the line break; every message shown once, in order.
    assert "hello alice\nhow are you?" in log(a.page).inner_text()
    assert shown_seqs(a.page) == shown_seqs(b.page) == [1, 2]
    assert_clean(a, b)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    a.page.screenshot(path=SCREENSHOTS / "chat.png")


def test_markup_in_a_message_is_shown_as_text_and_runs_nothing(
    open_page: Callable[..., Watched], site: Server, people
) -> None:
    (alice, bob), room = people(2)
    a, b = open_page(site), open_page(site)
    sign_in(a.page, alice)
    open_room(a.page, room)
    sign_in(b.page, bob)
    open_room(b.page, room)
    body = "<img src=x onerror=alert(1)> <script>alert(2)</script> <b>bold?</b>"
    composer(b.page).fill(body)
    composer(b.page).press("Enter")
    expect(log(a.page)).to_contain_text(body)
    a.page.wait_for_timeout(500)
    for seen in (a, b):
        assert log(seen.page).locator("img, script, b").count() == 0
    assert_clean(a, b)


def test_a_wrong_password_says_so_clearly(open_page: Callable[..., Watched], site: Server) -> None:
    account = Api(site).account()
    seen = open_page(site)
    seen.page.goto("/")
    seen.page.get_by_label("Username").fill(account.username)
    seen.page.get_by_label("Password").fill("not the password")
    seen.page.get_by_role("button", name="Sign in").click()
    expect(seen.page.get_by_role("alert")).to_contain_text(re.compile("wrong", re.IGNORECASE))
    expect(seen.page.get_by_role("button", name="Sign in")).to_be_visible()


# --- Safety ------------------------------------------------------------------------------------


def test_the_page_forbids_inline_script(open_page: Callable[..., Watched], site: Server) -> None:
    seen = open_page(site)
    response = seen.page.goto("/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    # An injected inline script does not run, whatever got it into the page.
    seen.page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = true'; document.body.append(s); }"
    )
    assert seen.page.evaluate("window.injected") is None


def test_no_token_travels_in_a_url(
    open_page: Callable[..., Watched], site: Server, people
) -> None:
    (alice,), room = people(1)
    seen = open_page(site)
    sign_in(seen.page, alice)
    open_room(seen.page, room)
    composer(seen.page).fill("hello")
    composer(seen.page).press("Enter")
    expect(log(seen.page)).to_contain_text("hello")
    stored = json.dumps(seen.page.evaluate("() => ({...sessionStorage})"))
    tokens = re.findall(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", stored)
    assert tokens, "the page keeps its tokens in sessionStorage"
    assert any(url.startswith("ws://") for url in seen.urls)
    for url in seen.urls:
        if "/ws/" in url:
            # The bearer subprotocol, never a query string (nor a ticket in one).
            assert "?" not in url, url
        assert not any(token in url for token in tokens), url
        assert not re.search(r"[?&](token|access|refresh|jwt|ticket)=", url), url
    # Nor in a cookie a script could read.
    assert seen.page.evaluate("document.cookie") == ""
    assert_clean(seen)


# --- Failures ----------------------------------------------------------------------------------


@pytest.fixture
def own_site(
    start_redis: Callable[[], RedisServer], start_server: Callable[..., Server]
) -> tuple[RedisServer, Server, Server]:
    """A Redis this test may stop, the page's server, and another process beside it."""
    redis = start_redis()
    main = start_server(redis.url, name="page-main", SERVE_STATIC="true")
    other = start_server(redis.url, name="page-other", SERVE_STATIC="true")
    return redis, main, other


def test_the_page_resumes_through_a_redis_outage_and_a_restart_showing_each_message_once(
    open_page: Callable[..., Watched], own_site: tuple[RedisServer, Server, Server]
) -> None:
    redis, main, other = own_site
    api = Api(main)
    alice, bob = api.account("alice"), api.account("bob")
    room = api.room(bob)
    seen = open_page(main)
    status = seen.page.get_by_role("status")
    sign_in(seen.page, alice)
    open_room(seen.page, room)
    say_elsewhere(other, bob, room, ["before anything"])
    expect(log(seen.page)).to_contain_text("before anything")

    # Redis goes away: the server closes the socket with 4013, a reconnect code.
    redis.stop()
    expect(status).to_have_text(re.compile("Reconnecting"))
    redis.start()
    expect(status).to_have_text(re.compile("Connected"), timeout=RECONNECTED_WITHIN_MS)
    say_elsewhere(other, bob, room, ["after redis"])
    expect(log(seen.page)).to_contain_text("after redis")

    # The page's own server restarts (1001), and the room goes on meanwhile elsewhere.
    main.stop()
    expect(status).to_have_text(re.compile("Reconnecting|Offline"))
    say_elsewhere(other, bob, room, ["while you were away", "and again"])
    main.start()
    expect(status).to_have_text(re.compile("Connected"), timeout=RECONNECTED_WITHIN_MS)
    expect(log(seen.page)).to_contain_text("and again")
    assert shown_seqs(seen.page) == [1, 2, 3, 4]
    assert_clean(seen, server_was_down=True)


def test_a_message_sent_while_offline_is_delivered_once_after_reconnecting(
    open_page: Callable[..., Watched], own_site: tuple[RedisServer, Server, Server]
) -> None:
    _, main, other = own_site
    api = Api(main)
    alice, bob = api.account("alice"), api.account("bob")
    room = api.room(alice)
    writer, reader = open_page(main), open_page(other)
    sign_in(writer.page, alice)
    open_room(writer.page, room)
    sign_in(reader.page, bob)
    open_room(reader.page, room)

    main.stop()
    expect(writer.page.get_by_role("status")).to_have_text(re.compile("Reconnecting|Offline"))
    composer(writer.page).fill("written offline")
    composer(writer.page).press("Enter")
    expect(log(writer.page).get_by_text("Sending…")).to_be_visible()
    main.start()
    expect(log(writer.page).get_by_text("Sending…")).to_have_count(
        0, timeout=RECONNECTED_WITHIN_MS
    )
    expect(log(reader.page)).to_contain_text("written offline")
    reader.page.wait_for_timeout(1000)
    assert shown_seqs(reader.page) == [1]
    assert shown_seqs(writer.page) == [1]
    history = api.expect(200, "GET", f"/api/rooms/{room}/messages/", token=alice.access)
    assert [m["body"] for m in history["messages"]] == ["written offline"]
    assert_clean(writer, reader, server_was_down=True)


# --- Access --------------------------------------------------------------------------------------


def test_the_chat_works_from_the_keyboard_alone(
    open_page: Callable[..., Watched], site: Server, people
) -> None:
    (alice,), room = people(1)
    seen = open_page(site)
    page = seen.page
    page.goto("/")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type(alice.username)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text(re.compile("Connected"))
    room_button = page.get_by_role("navigation", name="Rooms").get_by_role(
        "button", name=re.compile(re.escape(room))
    )
    for _ in range(40):
        if room_button.evaluate("b => b === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(room_button).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=room)).to_be_visible()
    composer(page).focus()
    page.keyboard.type("typed, never clicked")
    page.keyboard.press("Enter")
    expect(log(page)).to_contain_text("typed, never clicked")
    assert_clean(seen)


def test_the_page_fits_a_phone(open_page: Callable[..., Watched], site: Server, people) -> None:
    (alice, bob), room = people(2)
    say_elsewhere(site, bob, room, ["a message long enough to wrap on a narrow screen " * 3])
    seen = open_page(site, viewport=PHONE)
    sign_in(seen.page, alice)
    open_room(seen.page, room)
    expect(log(seen.page)).to_contain_text("narrow screen")
    expect(composer(seen.page)).to_be_visible()
    expect(seen.page.get_by_role("button", name="Send")).to_be_visible()
    # Nothing sticks out sideways.
    overflow = seen.page.evaluate(
        "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
    )
    assert overflow <= 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    seen.page.screenshot(path=SCREENSHOTS / "chat-phone.png")
    assert_clean(seen)
