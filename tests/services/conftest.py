"""Fixtures that start real PostgreSQL, redis-server, daphne and nginx processes on free
127.0.0.1 ports.

Shared (session) instances serve the tests that only read and write through them: one
PostgreSQL (`postgres_server`, migrated once, the database of every server unless a test
says otherwise), one Redis, two daphne workers. A test that stops the database or Redis or
kills a worker asks for its own through `start_postgres`/`start_redis`/`start_server`,
so the shared instances stay healthy for everyone else. Servers run as `manage.py serve`
starts daphne, or with runner="daphne" as plain `python -m daphne` (`plain_server`, and
`either_server` to run a test under both). `start_redis` also starts TLS-only servers and
replicas, `start_sentinel` a Redis Sentinel over them. The nginx tests put the shipped
deploy/nginx/ configuration in front of a daphne run with --proxy-headers (`proxied`,
`start_proxied`, `shipped_site`). Every process is stopped at teardown, even when the test
failed, and once more at exit as a last resort.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.services.support.api import Api
from tests.services.support.common import ServiceError, migrated_environment, unique_name
from tests.services.support.daphne import RUNNERS, Server
from tests.services.support.nginx import Nginx, SiteNginx, nginx_binary
from tests.services.support.postgres import PostgresServer, postgres_bin_dir
from tests.services.support.redis_server import (
    RedisServer,
    RedisTls,
    SentinelServer,
    redis_server_binary,
)

Process = PostgresServer | RedisServer | SentinelServer | Server | Nginx

_started: list[Process] = []


def _stop(process: Process) -> None:
    # A PostgreSQL server also owns a data directory outside pytest's tmp: remove it too.
    if isinstance(process, PostgresServer):
        process.remove()
    else:
        process.stop()


@atexit.register
def _stop_leftovers() -> None:
    # Reached only if teardown itself was interrupted (Ctrl-C, a crash in a fixture).
    for process in reversed(_started):
        _stop(process)


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def redis_binary() -> str:
    try:
        return redis_server_binary()
    except ServiceError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def nginx_path() -> str:
    try:
        return nginx_binary()
    except ServiceError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def postgres_bin() -> Path:
    """The directory of initdb and postgres (Debian's newest /usr/lib/postgresql/N/bin)."""
    try:
        return postgres_bin_dir()
    except ServiceError as exc:
        pytest.fail(str(exc), pytrace=False)


def _postgres_factory(
    services_dir: Path, bin_dir: Path, started: list[PostgresServer]
) -> Callable[[], PostgresServer]:
    def start() -> PostgresServer:
        server = PostgresServer(bin_dir=bin_dir, workdir=services_dir / unique_name("postgres"))
        started.append(server)
        _started.append(server)
        return server.start()

    return start


@pytest.fixture(scope="session")
def postgres_server(services_dir: Path, postgres_bin: Path) -> Iterator[PostgresServer]:
    """The PostgreSQL every server of the run uses (`url`: its database `chat`)."""
    started: list[PostgresServer] = []
    try:
        yield _postgres_factory(services_dir, postgres_bin, started)()
    finally:
        _stop_all(started)


@pytest.fixture
def start_postgres(
    services_dir: Path, postgres_bin: Path
) -> Iterator[Callable[[], PostgresServer]]:
    """Start a PostgreSQL this test alone uses (and may stop); removed at teardown.

    start_postgres() -> PostgresServer, with an empty database at `.url` (migrate it with
    migrated_environment(workdir, server.url)).
    """
    started: list[PostgresServer] = []
    try:
        yield _postgres_factory(services_dir, postgres_bin, started)
    finally:
        _stop_all(started)


@pytest.fixture(scope="session")
def server_env(services_dir: Path, postgres_server: PostgresServer) -> dict[str, str]:
    """What every server of the run shares: key, database (migrated, on `postgres_server`),
    origins, generous throttles."""
    try:
        # Each server pools its PostgreSQL connections, checked before each use, as
        # deployed (DATABASE_POOL_MAX_SIZE).
        return migrated_environment(services_dir, postgres_server.url)
    except ServiceError as exc:
        pytest.fail(str(exc), pytrace=False)


def _server_factory(
    services_dir: Path, server_env: dict[str, str], started: list[Server]
) -> Callable[..., Server]:
    def start(
        redis_url: str | None,
        *,
        name: str = "daphne",
        proxy_headers: bool = False,
        runner: str = "serve",
        **overrides: str,
    ) -> Server:
        name = unique_name(name)
        workdir = services_dir / name
        env = dict(
            server_env,
            VAR_DIR=str(workdir / "var"),
            LOG_FILE=str(workdir / "realtime.log"),
            **overrides,
        )
        if redis_url is not None:
            env["REDIS_URL"] = redis_url
        server = Server(
            name=name, env=env, workdir=workdir, proxy_headers=proxy_headers, runner=runner
        )
        started.append(server)
        _started.append(server)
        return server.start()

    return start


def _redis_factory(
    services_dir: Path, binary: str, started: list[RedisServer]
) -> Callable[..., RedisServer]:
    def start(*, tls: RedisTls | None = None, extra_args: Sequence[str] = ()) -> RedisServer:
        server = RedisServer(
            binary=binary,
            workdir=services_dir / unique_name("redis"),
            tls=tls,
            extra_args=tuple(extra_args),
        )
        started.append(server)
        _started.append(server)
        return server.start()

    return start


def _proxied_factory(
    services_dir: Path, server_env: dict[str, str], binary: str, started: list[Server | Nginx]
) -> Callable[..., tuple[Nginx, Server]]:
    start_server = _server_factory(services_dir, server_env, started)

    def start(
        redis_url: str | None, *, name: str = "proxied", **overrides: str
    ) -> tuple[Nginx, Server]:
        server = start_server(redis_url, name=name, proxy_headers=True, **overrides)
        nginx = Nginx(binary=binary, workdir=server.workdir / "nginx", upstream=server)
        started.append(nginx)
        _started.append(nginx)
        return nginx.start(), server

    return start


def _stop_all(processes: Sequence[Process]) -> None:
    for process in reversed(processes):
        _stop(process)


@pytest.fixture(scope="session")
def redis_server(services_dir: Path, redis_binary: str) -> Iterator[RedisServer]:
    started: list[RedisServer] = []
    try:
        yield _redis_factory(services_dir, redis_binary, started)()
    finally:
        _stop_all(started)


@pytest.fixture(scope="session")
def server_pair(
    services_dir: Path, server_env: dict[str, str], redis_server: RedisServer
) -> Iterator[tuple[Server, Server]]:
    """Two daphne processes behind one Redis, as two workers behind a load balancer."""
    started: list[Server] = []
    try:
        start = _server_factory(services_dir, server_env, started)
        yield start(redis_server.url, name="a"), start(redis_server.url, name="b")
    finally:
        _stop_all(started)


@pytest.fixture
def server_a(server_pair: tuple[Server, Server]) -> Server:
    return server_pair[0]


@pytest.fixture
def server_b(server_pair: tuple[Server, Server]) -> Server:
    return server_pair[1]


@pytest.fixture
def api(server_a: Server) -> Api:
    return Api(server_a)


@pytest.fixture(scope="session")
def plain_server(
    services_dir: Path, server_env: dict[str, str], redis_server: RedisServer
) -> Iterator[Server]:
    """The project under plain `python -m daphne ... config.asgi:application`, as people
    deploy it without `manage.py serve` (no transport caps, no graceful SIGTERM), on the
    shared Redis and database: it sees the users and rooms of server_a and server_b."""
    started: list[Server] = []
    try:
        yield _server_factory(services_dir, server_env, started)(
            redis_server.url, name="plain", runner="daphne"
        )
    finally:
        _stop_all(started)


@pytest.fixture(params=RUNNERS)
def either_server(request: pytest.FixtureRequest) -> Server:
    """Runs the test twice: on server_a (`manage.py serve`) and on plain_server (daphne)."""
    return request.getfixturevalue("server_a" if request.param == "serve" else "plain_server")


@pytest.fixture
def start_redis(services_dir: Path, redis_binary: str) -> Iterator[Callable[..., RedisServer]]:
    """Start a Redis this test alone uses (and may stop); stopped at teardown.

    start_redis(tls=None | RedisTls, extra_args=()) -> RedisServer (TLS only, on its
    rediss:// `url`, when `tls` is given)
    """
    started: list[RedisServer] = []
    try:
        yield _redis_factory(services_dir, redis_binary, started)
    finally:
        _stop_all(started)


@pytest.fixture
def start_sentinel(
    services_dir: Path, redis_binary: str
) -> Iterator[Callable[[dict[str, int]], SentinelServer]]:
    """Start a Redis Sentinel this test alone uses; stopped at teardown.

    start_sentinel({master_name: port of a RedisServer}) -> SentinelServer
    """
    started: list[SentinelServer] = []

    def start(masters: dict[str, int]) -> SentinelServer:
        sentinel = SentinelServer(
            binary=redis_binary, workdir=services_dir / unique_name("sentinel"), masters=masters
        )
        started.append(sentinel)
        _started.append(sentinel)
        return sentinel.start()

    try:
        yield start
    finally:
        _stop_all(started)


@pytest.fixture
def start_server(
    services_dir: Path, server_env: dict[str, str]
) -> Iterator[Callable[..., Server]]:
    """Start daphne processes this test alone uses (and may kill); stopped at teardown.

    start_server(redis_url, name=..., proxy_headers=False, runner="serve"|"daphne",
                 **ENV_OVERRIDES) -> Server
    """
    started: list[Server] = []
    try:
        yield _server_factory(services_dir, server_env, started)
    finally:
        _stop_all(started)


@pytest.fixture(scope="module")
def proxied(
    services_dir: Path, server_env: dict[str, str], nginx_path: str, redis_server: RedisServer
) -> Iterator[tuple[Nginx, Server]]:
    """nginx with the shipped deploy/nginx/ directives in front of a daphne run as in
    production (--proxy-headers, Redis): (nginx, daphne). Shared by one test module."""
    started: list[Server | Nginx] = []
    try:
        yield _proxied_factory(services_dir, server_env, nginx_path, started)(redis_server.url)
    finally:
        _stop_all(started)


@pytest.fixture
def start_proxied(
    services_dir: Path, server_env: dict[str, str], nginx_path: str
) -> Iterator[Callable[..., tuple[Nginx, Server]]]:
    """Start an nginx + daphne pair this test alone uses; both stopped at teardown.

    start_proxied(redis_url, name=..., runner="serve"|"daphne", **ENV_OVERRIDES)
        -> (Nginx, Server)
    """
    started: list[Server | Nginx] = []
    try:
        yield _proxied_factory(services_dir, server_env, nginx_path, started)
    finally:
        _stop_all(started)


@pytest.fixture
def shipped_site(
    proxied: tuple[Nginx, Server], nginx_path: str, tmp_path: Path
) -> Iterator[SiteNginx]:
    """deploy/nginx/chat.conf as a whole (both servers, TLS) in front of `proxied`'s daphne,
    not started: the test starts it or only checks it. Stopped at teardown."""
    site = SiteNginx(binary=nginx_path, workdir=tmp_path / "site", upstream=proxied[1])
    _started.append(site)
    try:
        yield site
    finally:
        site.stop()
