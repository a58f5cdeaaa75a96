"""GET /healthz answers for the database (Redis is covered where a real server runs)."""

from __future__ import annotations

import logging
import socket
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connections
from django.db.utils import load_backend

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_redis(settings):
    settings.REDIS_URL = ""


@contextmanager
def database_unopenable(directory: Path):
    """Swap the default connection for one whose database cannot be opened.

    A new wrapper rather than a renamed one: the test database lives in memory, and closing
    its connection would destroy it for every later test.
    """
    original = connections["default"]
    settings_dict = dict(original.settings_dict)
    if original.vendor == "sqlite":
        settings_dict["NAME"] = str(directory / "no-such-directory" / "db.sqlite3")
    else:
        settings_dict["NAME"] = "no_such_database_for_health_check"
    broken = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, "default")
    connections["default"] = broken
    try:
        yield
    finally:
        broken.close()
        connections["default"] = original


def test_healthz_is_ok_when_the_database_answers(client, no_redis):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_unavailable_when_the_database_cannot_be_opened(
    client, no_redis, tmp_path, caplog
):
    caplog.set_level(logging.ERROR, logger="config.health")

    with database_unopenable(tmp_path):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"database": "unavailable"}}
    assert "no-cache" in response["Cache-Control"]
    # The failure is the database's own, not something else raised on the way.
    (record,) = [r for r in caplog.records if r.name == "config.health"]
    assert record.getMessage() == "health check failed service=database error=OperationalError"


def test_healthz_recovers_once_the_database_is_back(client, no_redis, tmp_path):
    with database_unopenable(tmp_path):
        assert client.get("/healthz").status_code == 503

    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch", "options"])
def test_healthz_only_answers_get_and_head(client, no_redis, method):
    response = getattr(client, method)("/healthz")

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_healthz_answers_head_for_load_balancer_probes(client, no_redis):
    response = client.head("/healthz")

    assert response.status_code == 200
    assert response.content == b""


def test_healthz_checks_the_channel_layers_own_servers(client, no_redis, settings, caplog):
    """A shard other than REDIS_URL's is checked as `channel_layer` (tests/services/
    test_layer_shards.py shows it ok against real shards)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "realtime.layers.ChatChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{port}/0"}]},
        }
    }
    caplog.set_level(logging.ERROR, logger="config.health")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "channel_layer": "unavailable"},
    }
    assert [r.getMessage() for r in caplog.records if r.name == "config.health"] == [
        "health check failed service=channel_layer error=ConnectionError"
    ]
