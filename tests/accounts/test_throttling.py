"""Login and registration are throttled per client address."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings

from accounts.models import User
from tests.conftest import PASSWORD

LOGIN = "/api/auth/token/"
REGISTER = "/api/auth/register/"
LOGIN_RATE = 3
REGISTER_RATE = 2
WRONG_PASSWORD = "wrong-guess"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def low_rates():
    rates = {"login": f"{LOGIN_RATE}/min", "register": f"{REGISTER_RATE}/min", "ticket": "100/min"}
    cache.clear()
    with override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    ):
        yield
    cache.clear()


def login(client, password=WRONG_PASSWORD, **extra):
    return client.post(LOGIN, {"username": "alice", "password": password}, format="json", **extra)


def register(client, n, **extra):
    body = {
        "username": f"newcomer{n}",
        "email": f"newcomer{n}@example.com",
        "password": "violet-kettle-orbit-1987",
    }
    return client.post(REGISTER, body, format="json", **extra)


def assert_throttled(response):
    assert response.status_code == 429, response.content
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    error = response.json()["error"]
    assert set(error) == {"code", "message", "retry_after"}
    assert error["code"] == "throttled"
    assert error["message"]
    assert retry_after <= error["retry_after"] <= 60


def test_login_is_throttled_after_the_configured_rate(api_client, user):
    for _ in range(LOGIN_RATE):
        assert login(api_client).status_code == 401

    assert_throttled(login(api_client))
    # The right password does not get through either: the budget is for attempts.
    assert_throttled(login(api_client, password=PASSWORD))


def test_register_is_throttled_after_the_configured_rate(api_client):
    for n in range(REGISTER_RATE):
        assert register(api_client, n).status_code == 201

    assert_throttled(register(api_client, REGISTER_RATE))
    assert not User.objects.filter(username=f"newcomer{REGISTER_RATE}").exists()


def test_login_and_register_have_separate_budgets(api_client, user):
    for _ in range(LOGIN_RATE):
        login(api_client)
    assert_throttled(login(api_client))

    assert register(api_client, 0).status_code == 201


def test_each_client_address_has_its_own_budget(api_client, user):
    for _ in range(LOGIN_RATE):
        assert login(api_client, REMOTE_ADDR="198.51.100.1").status_code == 401
    assert_throttled(login(api_client, REMOTE_ADDR="198.51.100.1"))

    assert login(api_client, REMOTE_ADDR="198.51.100.2").status_code == 401
    assert login(api_client, password=PASSWORD, REMOTE_ADDR="198.51.100.2").status_code == 200


def test_a_spoofed_forwarded_for_header_does_not_reset_the_budget(api_client, user):
    for n in range(LOGIN_RATE):
        response = login(
            api_client, REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}"
        )
        assert response.status_code == 401

    spoofed = login(api_client, REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert_throttled(spoofed)
    assert_throttled(login(api_client, REMOTE_ADDR="198.51.100.1"))
