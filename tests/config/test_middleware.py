"""A ticket seen in a plain HTTP URL is spent at once, logged without its value."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError

from config import middleware
from realtime import tickets

MIDDLEWARE = "config.middleware.BurnTicketsInUrlsMiddleware"


def issue_ticket(auth_client) -> str:
    """A ticket as a client gets one: from the endpoint, for the `user` fixture."""
    response = auth_client.post("/api/realtime/ticket/")
    assert response.status_code == 201, response.content
    return response.json()["ticket"]


@pytest.fixture
def ticket(auth_client) -> str:
    return issue_ticket(auth_client)


def security_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "realtime.security"]


@pytest.mark.django_db
def test_a_ticket_in_a_plain_http_url_is_spent_and_logged_without_its_value(
    client, caplog, user, ticket
):
    with caplog.at_level(logging.WARNING, logger="realtime.security"):
        response = client.get(f"/ws/chat/?room=lobby&ticket={ticket}")

    # The request itself is answered as it would have been.
    assert response.status_code == 404
    assert tickets.ticket_redeem(ticket) is None
    [burned] = security_records(caplog)
    message = burned.getMessage()
    assert ticket not in message
    assert "ticket in url spent" in message
    assert "path=/ws/chat/" in message
    assert f"user={user.pk}" in message


@pytest.mark.django_db
def test_every_ticket_of_the_url_is_spent_even_with_an_encoded_name(client, auth_client):
    first, second = issue_ticket(auth_client), issue_ticket(auth_client)

    # parse_qs decodes names, so the WebSocket handshake would accept "%74icket" too.
    client.get(f"/healthz?ticket={first}&%74icket={second}")

    assert tickets.ticket_redeem(first) is None
    assert tickets.ticket_redeem(second) is None


@pytest.mark.django_db
def test_an_unknown_ticket_is_logged_as_such(client, caplog):
    with caplog.at_level(logging.WARNING, logger="realtime.security"):
        client.get("/api/rooms/?ticket=never-issued")

    [burned] = security_records(caplog)
    assert "user=None" in burned.getMessage()
    assert "never-issued" not in burned.getMessage()


@pytest.mark.django_db
def test_a_url_without_a_ticket_never_reaches_the_ticket_store(client, monkeypatch, caplog):
    def fail(ticket: str) -> int | None:
        raise AssertionError("ticket_redeem called")

    monkeypatch.setattr(tickets, "ticket_redeem", fail)

    with caplog.at_level(logging.WARNING, logger="realtime.security"):
        assert client.get("/healthz?tick=1&tickets=2&check=ticket").status_code in {200, 503}

    assert security_records(caplog) == []


@pytest.mark.django_db
def test_the_ticket_store_failing_does_not_fail_the_request(client, monkeypatch, caplog):
    def unavailable(ticket: str) -> int | None:
        raise RedisConnectionError("down")

    monkeypatch.setattr(tickets, "ticket_redeem", unavailable)

    with caplog.at_level(logging.WARNING, logger="realtime.security"):
        response = client.get("/ws/chat/?ticket=leaked-while-redis-is-down")

    assert response.status_code == 404
    messages = [r.getMessage() for r in security_records(caplog)]
    assert any("could not be spent" in m and "ConnectionError" in m for m in messages)
    assert not any("leaked-while-redis-is-down" in m for m in messages)


def test_the_middleware_runs_before_any_that_may_answer_early():
    # SecurityMiddleware may redirect and CommonMiddleware refuse a host: the ticket is spent
    # before either can answer without calling the rest of the chain.
    assert settings.MIDDLEWARE[0] == MIDDLEWARE
    assert middleware.BurnTicketsInUrlsMiddleware.__module__ == "config.middleware"
