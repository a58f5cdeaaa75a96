"""`make stack` end to end: the production topology on this machine, as an operator tries it.

The entry point `make stack` runs (`python -m deploy.stack`) is started in a process group of
its own, on free ports, with a throwaway database (STACK_TEMP=1). Two clients sign up over
https through nginx, chat over wss:// from two different daphne processes, the health report
and a static file come through nginx, and SIGINT (a Ctrl-C) stops all of it: exit status 0,
no process of the stack left, nothing but 127.0.0.1 listened on.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.services.support.common import (
    HOST,
    HTTP_TIMEOUT,
    PASSWORD,
    PYTHON,
    RECV_TIMEOUT,
    ROOT,
    ServiceError,
    base_environment,
    free_port,
    tail,
    unique_name,
    wait_until,
)
from tests.services.support.sockets import join, message_by_id, post, ws_connect

pytestmark = [pytest.mark.services]

# PostgreSQL's initdb, migrate, collectstatic and two daphne imports on 2 loaded cores.
START_TIMEOUT = 90.0
# nginx, then daphne (up to 15 s each to close sockets), redis and PostgreSQL.
STOP_TIMEOUT = 60.0
# Tries at putting the second client on the other daphne process (nginx round-robins).
PLACEMENT_TRIES = 6


@contextlib.contextmanager
def _stack(tmp_path: Path, ports: dict[str, str]) -> Iterator[tuple[subprocess.Popen, Path]]:
    """The stack, running; stopped with SIGKILL to everything at teardown if the test did
    not stop it. (stack process, its console output)."""
    env = dict(base_environment(), STACK_DIR=str(tmp_path / "stack"), STACK_TEMP="1", **ports)
    console = tmp_path / "console.log"
    with console.open("wb") as out:
        proc = subprocess.Popen(
            [PYTHON, "-m", "deploy.stack"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    state_file = tmp_path / "stack" / "stack.json"
    sessions: set[int] = {proc.pid}
    try:
        yield proc, console
    finally:
        if state_file.exists():
            sessions |= set(json.loads(state_file.read_text())["processes"].values())
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def _processes_in(sessions: set[int]) -> dict[int, str]:
    """Every live process whose session is one of `sessions`: pid -> command."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) in sessions:
            found[int(entry.name)] = command or stat
    return found


def _listening(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket these processes listen on."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    listening = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word of the address in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            listening.add((socket.inet_ntop(family, raw), int(port, 16)))
    return listening


class Https:
    """Requests through nginx over TLS, trusting the stack's certificate only."""

    def __init__(self, port: int, tls: ssl.SSLContext) -> None:
        self.port, self.tls = port, tls

    def request(
        self, method: str, path: str, payload: Any = None, *, token: str | None = None
    ) -> tuple[int, http.client.HTTPMessage, Any]:
        headers = {}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPSConnection(
            HOST, self.port, timeout=HTTP_TIMEOUT, context=self.tls
        )
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        return response.status, response.headers, parsed

    def expect(self, status: int, method: str, path: str, payload: Any = None, **kw: Any) -> Any:
        got, _, body = self.request(method, path, payload, **kw)
        assert got == status, f"{method} {path}: {got} {body!r}"
        return body

    def sign_up(self, prefix: str) -> tuple[int, str]:
        """Register and sign in through the REST API: (user id, access token)."""
        username = unique_name(prefix)
        self.expect(
            201,
            "POST",
            "/api/auth/register/",
            {"username": username, "email": f"{username}@example.com", "password": PASSWORD},
        )
        tokens = self.expect(
            200, "POST", "/api/auth/token/", {"username": username, "password": PASSWORD}
        )
        me = self.expect(200, "GET", "/api/auth/me/", token=tokens["access"])
        return me["id"], tokens["access"]


async def _placed(log_dir: Path, ports: dict[int, int], user_id: int) -> int:
    """The daphne port whose count of this user's sockets grew past `ports`' counts."""
    async with asyncio.timeout(RECV_TIMEOUT):
        while True:
            for port, before in ports.items():
                if _connects(log_dir, port, user_id) > before:
                    return port
            await asyncio.sleep(0.1)


async def _chat_across_daphnes(
    log_dir: Path,
    daphnes: tuple[int, int],
    https_port: int,
    tls: ssl.SSLContext,
    room: str,
    first_user: tuple[int, str],
    second_user: tuple[int, str],
) -> None:
    """Two wss:// clients, each on its own daphne process, chat in `room` both ways: the
    messages cross from one process to the other through Redis."""
    origin = f"https://{HOST}:{https_port}"
    endpoint = SimpleNamespace(ws_url=f"wss://{HOST}:{https_port}/ws/chat/")

    def connect(token: str) -> Any:
        return ws_connect(endpoint, token=token, origin=origin, ssl=tls)  # type: ignore[arg-type]

    (first_id, first_token), (second_id, second_token) = first_user, second_user
    async with connect(first_token) as first, contextlib.AsyncExitStack() as sockets:
        first_on = await _placed(log_dir, dict.fromkeys(daphnes, 0), first_id)
        for _ in range(PLACEMENT_TRIES):
            before = {port: _connects(log_dir, port, second_id) for port in daphnes}
            second = await sockets.enter_async_context(connect(second_token))
            second_on = await _placed(log_dir, before, second_id)
            if second_on != first_on:
                break
            await second.close()
        assert second_on != first_on, "nginx put every socket on the same daphne process"

        await join(first, room)
        await join(second, room)
        sent = await post(first, room, "from one daphne")
        assert (await message_by_id(second, sent))["body"] == "from one daphne"
        reply = await post(second, room, "to the other")
        assert (await message_by_id(first, reply))["body"] == "to the other"


def _connects(log_dir: Path, port: int, user_id: int) -> int:
    """How many sockets of this user the daphne on `port` accepted (its LOG_FILE)."""
    log = log_dir / f"realtime-{port}.log"
    if not log.exists():
        return 0
    prefix = f"ws connect user={user_id} "
    return sum(
        1
        for line in log.read_text().splitlines()
        if line and json.loads(line)["message"].startswith(prefix)
    )


def test_make_stack_runs_the_production_topology_and_ctrl_c_stops_all_of_it(
    tmp_path: Path, nginx_path: str, redis_binary: str, postgres_bin: Path
) -> None:
    https_port, http_port, daphne_a, daphne_b, redis_port, postgres_port = (
        free_port() for _ in range(6)
    )
    ports = {
        "STACK_PORT": str(https_port),
        "STACK_HTTP_PORT": str(http_port),
        "STACK_DAPHNE_PORTS": f"{daphne_a},{daphne_b}",
        "STACK_REDIS_PORT": str(redis_port),
        "STACK_POSTGRES_PORT": str(postgres_port),
    }
    state_file = tmp_path / "stack" / "stack.json"
    log_dir = tmp_path / "stack" / "log"
    origin = f"https://{HOST}:{https_port}"

    with _stack(tmp_path, ports) as (proc, console):

        def up() -> bool:
            if proc.poll() is not None:
                raise ServiceError(f"the stack exited with {proc.returncode}\n{tail(console)}")
            return state_file.exists() and "Ctrl-C stops it." in console.read_text()

        wait_until(up, timeout=START_TIMEOUT, what=f"the stack's banner\n{tail(console)}")
        state = json.loads(state_file.read_text())
        banner = console.read_text()
        for url in (
            f"{origin}/",
            f"{origin}/admin/",
            f"{origin}/healthz",
            f"wss://{HOST}:{https_port}/ws/chat/",
        ):
            assert url in banner, banner
        assert re.search(r"alice +\S+", banner), "the demo users were not created"
        sessions = {proc.pid, *state["processes"].values()}

        # Nothing listens anywhere but 127.0.0.1, and on no port but the stack's own.
        listening = _listening(set(_processes_in(sessions)))
        assert {address for address, _ in listening} == {HOST}, listening
        expected = {https_port, http_port, daphne_a, daphne_b, redis_port, postgres_port}
        assert {port for _, port in listening} == expected, listening

        # The certificate nginx presents names 127.0.0.1: verified, host name included.
        tls = ssl.create_default_context(cafile=state["certificate"])
        site = Https(https_port, tls)
        status, _, health = site.request("GET", "/healthz")
        assert (status, health) == (
            200,
            {"status": "ok", "checks": {"database": "ok", "redis": "ok"}},
        ), tail(console)

        # Static files come from collectstatic's directory, served by nginx (`expires 7d`),
        # with their type: a stylesheet served as text/plain is refused by browsers.
        status, headers, css = site.request("GET", "/static/admin/css/base.css")
        assert status == 200, css
        assert headers["Content-Type"] == "text/css", headers
        assert headers["Cache-Control"] == "max-age=604800", headers
        assert headers["Server"].startswith("nginx"), headers

        first_user = site.sign_up("stack-a")
        second_user = site.sign_up("stack-b")
        room = unique_name("stack-room")
        site.expect(
            201,
            "POST",
            "/api/rooms/",
            {"slug": room, "title": room, "is_private": False},
            token=first_user[1],
        )

        daphnes = (daphne_a, daphne_b)
        asyncio.run(
            _chat_across_daphnes(log_dir, daphnes, https_port, tls, room, first_user, second_user)
        )

        # nginx served the static file itself: no daphne saw the request.
        for port in daphnes:
            access = (log_dir / f"access-{port}.log").read_text()
            assert "/api/auth/token/" in access or "/ws/chat/" in access, access
            assert "/static/" not in access, access

        # Ctrl-C: SIGINT to the stack's process group, as a terminal sends it.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            status = proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the stack did not stop within {STOP_TIMEOUT:.0f}s\n{tail(console)}")
        output = console.read_text()
        assert status == 0, output
        assert output.rstrip().endswith("Stopped."), output
        stopping = [line for line in output.splitlines() if line.startswith("Stopping ")]
        assert [line.split()[1] for line in stopping] == [
            "nginx",
            "daphne",
            "redis-server",
            "PostgreSQL",
        ], output
        assert _processes_in(sessions) == {}, "processes of the stack outlived it"
        assert not state_file.exists()
        temp_cluster = re.search(r"Initialising PostgreSQL in (\S+)/data", output)
        assert temp_cluster, output
        assert not Path(temp_cluster[1]).exists(), "STACK_TEMP's database was left behind"
