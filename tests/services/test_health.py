"""GET /healthz on real servers: what a load balancer sees with Redis up and with it missing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.services.support.api import Api
from tests.services.support.common import free_port
from tests.services.support.daphne import Server

pytestmark = pytest.mark.services


def test_healthy_server_reports_every_backend_ok(server_a: Server) -> None:
    response = Api(server_a).health()
    assert response.status == 200
    assert response.body == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_server_without_redis_starts_and_reports_503(
    start_server: Callable[..., Server],
) -> None:
    # Nothing listens there: the process must still start and say what is wrong.
    server = start_server(f"redis://127.0.0.1:{free_port()}/0", name="no-redis")
    response = Api(server).health()
    assert response.status == 503
    assert response.body == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "unavailable"},
    }
    assert server.alive()
