"""Failed authentication is logged to realtime.security, without the secret that failed."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import PASSWORD, token_pair

pytestmark = pytest.mark.django_db

CLIENT_ADDR = "203.0.113.7"


class RawMessages(logging.Handler):
    """Keeps each message as the code emitted it, before any handler filter rewrites it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def raw_security_messages():
    """Messages sent to realtime.security, seen ahead of the redaction filter.

    The configured handlers redact the shared record in place, so caplog (attached after
    them) alone would pass even if the code itself logged a secret.
    """
    logger = logging.getLogger("realtime.security")
    handler = RawMessages()
    logger.handlers.insert(0, handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def security_records(caplog):
    return [record for record in caplog.records if record.name == "realtime.security"]


def assert_absent(secret, caplog, raw_messages):
    assert raw_messages
    assert all(secret not in message for message in raw_messages)
    assert all(secret not in record.getMessage() for record in caplog.records)
    assert secret not in caplog.text


def test_failed_login_is_logged_with_username_and_address_but_not_password(
    api_client, user, caplog, raw_security_messages
):
    secret = "Guess-Nobody-Should-See-31337"

    response = api_client.post(
        "/api/auth/token/",
        {"username": "alice", "password": secret},
        format="json",
        REMOTE_ADDR=CLIENT_ADDR,
    )

    assert response.status_code == 401
    records = security_records(caplog)
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "code=invalid_credentials" in message
    assert "username='alice'" in message
    assert f"addr={CLIENT_ADDR}" in message
    assert "path=/api/auth/token/" in message
    assert_absent(secret, caplog, raw_security_messages)


def test_successful_login_is_not_logged_as_a_security_event(
    api_client, user, caplog, raw_security_messages
):
    response = api_client.post(
        "/api/auth/token/", {"username": "alice", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 200
    assert security_records(caplog) == []
    assert raw_security_messages == []


def test_bad_token_is_logged_without_the_token(api_client, user, caplog, raw_security_messages):
    access, _ = token_pair(user)
    header, payload, signature = access.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"

    response = api_client.get(
        "/api/auth/me/", HTTP_AUTHORIZATION=f"Bearer {forged}", REMOTE_ADDR=CLIENT_ADDR
    )

    assert response.status_code == 401
    records = security_records(caplog)
    assert len(records) == 1
    message = records[0].getMessage()
    assert "code=token_not_valid" in message
    assert "path=/api/auth/me/" in message
    assert f"addr={CLIENT_ADDR}" in message
    for secret in (forged, payload, signature[::-1]):
        assert_absent(secret, caplog, raw_security_messages)


def test_bad_refresh_token_is_logged_without_the_token(
    api_client, user, caplog, raw_security_messages
):
    _, refresh = token_pair(user)
    logout = api_client.post("/api/auth/logout/", {"refresh": refresh}, format="json")
    assert logout.status_code == 204
    caplog.clear()
    raw_security_messages.clear()

    response = api_client.post("/api/auth/token/refresh/", {"refresh": refresh}, format="json")

    assert response.status_code == 401
    assert len(security_records(caplog)) == 1
    for secret in (refresh, refresh.split(".")[2]):
        assert_absent(secret, caplog, raw_security_messages)
