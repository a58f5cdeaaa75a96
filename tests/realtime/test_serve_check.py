"""`manage.py serve` checks the database and Redis before starting daphne: each one that does
not answer is named by host and port in a warning, never with its password; the process
starts anyway, or refuses to with --require-backends."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator

import dj_database_url
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from realtime.management.commands import serve

pytestmark = pytest.mark.django_db

SECRET = "s3cret-Pa55word-nobody-may-see"


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_redis(settings):
    settings.REDIS_URL = ""


@pytest.fixture
def database_url(monkeypatch):
    """Point the default database at a URL for the connections new threads open.

    The test's own connection (this thread's) stays on the test database; the check opens its
    own in a thread of its own, from these settings (DATABASES, which `connections` shares).
    """

    def use(url: str) -> None:
        current = connections.settings["default"]
        broken = {**current, **dj_database_url.parse(url), "OPTIONS": {}}
        monkeypatch.setitem(connections.settings, "default", broken)

    return use


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture
def daphne_runs(monkeypatch) -> list[list[str]]:
    """Record daphne's argv instead of starting it."""
    runs: list[list[str]] = []

    class FakeCli:
        def run(self, argv: list[str]) -> None:
            runs.append(argv)

    monkeypatch.setattr(serve, "GracefulCommandLineInterface", FakeCli)
    return runs


def test_no_warning_when_the_database_answers(no_redis):
    assert serve.check_backends() == []


def test_unreachable_redis_is_named_by_host_and_port_without_its_password(settings):
    port = free_port()
    settings.REDIS_URL = f"redis://chat:{SECRET}@127.0.0.1:{port}/0"

    warnings = serve.check_backends()

    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"Redis at 127.0.0.1:{port} does not answer (ConnectionError")
    assert SECRET not in warnings[0]


def test_broken_database_url_is_named_by_host_and_port_without_its_password(
    no_redis, database_url
):
    port = free_port()
    database_url(f"postgres://chat:{SECRET}@127.0.0.1:{port}/chat")

    warnings = serve.check_backends()

    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(
        f"postgresql database at 127.0.0.1:{port} does not answer (OperationalError"
    )
    assert SECRET not in warnings[0]


def test_a_backend_that_hangs_is_given_up_at_the_deadline(no_redis, database_url, silent_listener):
    database_url(f"postgres://chat:{SECRET}@127.0.0.1:{silent_listener}/chat")

    started = time.monotonic()
    warnings = serve.check_backends(timeout=0.5)

    assert time.monotonic() - started < 2
    assert warnings == [
        f"postgresql database at 127.0.0.1:{silent_listener} did not answer within 0.5 s."
    ]


def test_serve_warns_and_starts_anyway(settings, database_url, daphne_runs):
    redis_port, database_port = free_port(), free_port()
    settings.REDIS_URL = f"redis://:{SECRET}@127.0.0.1:{redis_port}/0"
    database_url(f"postgres://chat:{SECRET}@127.0.0.1:{database_port}/chat")
    out, err = io.StringIO(), io.StringIO()

    call_command("serve", "--port", "8123", stdout=out, stderr=err)

    assert len(daphne_runs) == 1
    assert f"Warning: postgresql database at 127.0.0.1:{database_port} does not answer" in (
        err.getvalue()
    )
    assert f"Warning: Redis at 127.0.0.1:{redis_port} does not answer" in err.getvalue()
    assert "Starting anyway" in err.getvalue()
    assert SECRET not in err.getvalue() + out.getvalue()


def test_serve_with_require_backends_refuses_to_start(settings, daphne_runs):
    settings.REDIS_URL = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    err = io.StringIO()

    with pytest.raises(CommandError, match="--require-backends"):
        call_command("serve", "--require-backends", stdout=io.StringIO(), stderr=err)

    assert daphne_runs == []
    assert "Warning: Redis at 127.0.0.1:" in err.getvalue()
    assert SECRET not in err.getvalue()


def test_serve_with_require_backends_starts_when_they_answer(no_redis, daphne_runs):
    err = io.StringIO()

    call_command("serve", "--require-backends", stdout=io.StringIO(), stderr=err)

    assert len(daphne_runs) == 1
    assert err.getvalue() == ""


def test_unreachable_channel_layer_servers_are_named_without_their_passwords(settings):
    redis_port, shard_port, sentinel_port = free_port(), free_port(), free_port()
    settings.REDIS_URL = f"redis://127.0.0.1:{redis_port}/0"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "realtime.layers.ChatChannelLayer",
            "CONFIG": {
                "hosts": [
                    # REDIS_URL's own server is checked once, as Redis.
                    {"address": settings.REDIS_URL},
                    {"address": f"redis://:{SECRET}@127.0.0.1:{shard_port}/0"},
                    {
                        "sentinels": [("127.0.0.1", sentinel_port)],
                        "master_name": "chat",
                        "sentinel_kwargs": {"password": SECRET},
                        "password": SECRET,
                    },
                ]
            },
        }
    }

    warnings = serve.check_backends()

    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"Redis at 127.0.0.1:{redis_port} does not answer")
    assert warnings[1].startswith(
        f"channel layer: Redis at 127.0.0.1:{shard_port}, Redis master chat (Sentinel) "
        "does not answer"
    )
    assert SECRET not in "".join(warnings)
