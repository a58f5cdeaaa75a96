"""The Django admin's login form is throttled like the API login, from the same budget."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts.throttles import LoginRateThrottle
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "/admin/login/"
API_LOGIN = "/api/auth/token/"
LOGIN_RATE = 3
WRONG_PASSWORD = "wrong-guess"
CLIENT_ADDR = "198.51.100.20"


@pytest.fixture(autouse=True)
def low_login_rate():
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": f"{LOGIN_RATE}/min"}
    cache.clear()
    with override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    ):
        yield
    cache.clear()


@pytest.fixture
def staff(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def security_messages():
    """realtime.security messages as the code wrote them (the logger does not propagate)."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("realtime.security")
    handler = Collect(logging.DEBUG)
    logger.handlers.insert(0, handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def admin_login(client, password=WRONG_PASSWORD, username="root", addr=CLIENT_ADDR):
    return client.post(
        ADMIN_LOGIN,
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=addr,
    )


def api_login(api_client, password=WRONG_PASSWORD, addr=CLIENT_ADDR):
    return api_client.post(
        API_LOGIN, {"username": "root", "password": password}, format="json", REMOTE_ADDR=addr
    )


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def assert_admin_throttled(response):
    assert response.status_code == 429, response.content
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    assert response["Content-Type"].startswith("text/plain")
    assert b"wait" in response.content.lower()
    assert "no-cache" in response["Cache-Control"]


def test_admin_login_within_the_rate_signs_in(client, staff):
    for _ in range(LOGIN_RATE - 1):
        assert admin_login(client).status_code == 200  # the form again, with its error

    response = admin_login(client, password=PASSWORD)

    assert response.status_code == 302
    assert signed_in(client)


def test_admin_login_is_throttled_past_the_rate_even_with_the_right_password(client, staff):
    for _ in range(LOGIN_RATE):
        assert admin_login(client).status_code == 200

    assert_admin_throttled(admin_login(client))
    assert_admin_throttled(admin_login(client, password=PASSWORD))
    assert not signed_in(client)


def test_showing_the_admin_login_form_is_not_an_attempt(client, staff):
    for _ in range(LOGIN_RATE * 2):
        assert client.get(ADMIN_LOGIN, REMOTE_ADDR=CLIENT_ADDR).status_code == 200

    assert admin_login(client, password=PASSWORD).status_code == 302


def test_api_attempts_count_against_the_admin_login(client, api_client, staff):
    for _ in range(LOGIN_RATE):
        assert api_login(api_client).status_code == 401

    assert_admin_throttled(admin_login(client, password=PASSWORD))
    assert not signed_in(client)


def test_admin_attempts_count_against_the_api_login(client, api_client, staff):
    for _ in range(LOGIN_RATE):
        assert admin_login(client).status_code == 200

    response = api_login(api_client, password=PASSWORD)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"


def test_each_client_address_has_its_own_admin_budget(client, staff):
    for _ in range(LOGIN_RATE):
        admin_login(client, addr="198.51.100.1")
    assert_admin_throttled(admin_login(client, addr="198.51.100.1"))

    assert admin_login(client, password=PASSWORD, addr="198.51.100.2").status_code == 302


def test_a_spoofed_forwarded_for_header_does_not_reset_the_admin_budget(client, staff):
    for n in range(LOGIN_RATE):
        client.post(
            ADMIN_LOGIN,
            {"username": "root", "password": WRONG_PASSWORD},
            REMOTE_ADDR=CLIENT_ADDR,
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        )

    assert_admin_throttled(
        client.post(
            ADMIN_LOGIN,
            {"username": "root", "password": PASSWORD},
            REMOTE_ADDR=CLIENT_ADDR,
            HTTP_X_FORWARDED_FOR="203.0.113.99",
        )
    )


def test_throttled_admin_login_is_logged_with_the_address_never_the_password(
    client, staff, security_messages
):
    for _ in range(LOGIN_RATE):
        admin_login(client)
    admin_login(client, password=PASSWORD)

    throttled = [m for m in security_messages if "admin login throttled" in m]
    assert len(throttled) == 1, security_messages
    assert f"addr={CLIENT_ADDR}" in throttled[0]
    assert "username='root'" in throttled[0]
    for message in security_messages:
        assert PASSWORD not in message
        assert WRONG_PASSWORD not in message


class BrokenCache:
    """A cache whose Redis is down."""

    def get(self, *args, **kwargs):
        raise RedisConnectionError("Connection refused")

    set = add = get


def test_admin_login_answers_503_when_the_throttle_cache_is_down(client, staff, monkeypatch):
    monkeypatch.setattr(LoginRateThrottle, "cache", BrokenCache())

    response = admin_login(client, password=PASSWORD)

    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("text/plain")
    assert "Retry-After" in response
    assert not signed_in(client)
