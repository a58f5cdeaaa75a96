"""The benchmark's WebSocket client: how each kind of server is spoken to, and socket batches.

Two dialects. `chat` is the project's protocol (docs/protocol.md): one URL, the access token
in an `Authorization: Bearer` header (a native client, so no Origin), `join` answered by
`joined`, `send` with a `body`, deliveries are `message` frames. `simple` is what the
tutorial and the relay speak: the room in the URL, `{"message": <text>}` both ways; the
tutorial's AllowedHostsOriginValidator refuses a handshake without an allowed Origin, so
it gets the Origin a browser on that host would send.

Every connection is opened the same way, whatever the server: no permessage-deflate (daphne
never accepts it, and zlib would measure the client), no client keepalive pings (the
servers ping; 10,000 client timers would bill the client), no proxy from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.protocol import State

SUBPROTOCOL = "chat.v1"


@dataclass(frozen=True)
class Dialect:
    """How to reach one room of one server and what its frames look like."""

    kind: str  # "chat" or "simple"
    base_ws: str  # ws://127.0.0.1:port
    token: str | None = None
    # simple: the URL path of a room, "{room}" replaced.
    path: str = "/ws/chat/{room}/"
    origin: str | None = None

    def url(self, room: str) -> str:
        if self.kind == "chat":
            return f"{self.base_ws}/ws/chat/"
        return self.base_ws + self.path.format(room=room)

    def connect(self, room: str, *, open_timeout: float = 30) -> connect:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        return connect(
            self.url(room),
            additional_headers=headers,
            subprotocols=[SUBPROTOCOL] if self.kind == "chat" else None,
            origin=self.origin,
            compression=None,
            proxy=None,
            open_timeout=open_timeout,
            ping_interval=None,
            close_timeout=5,
            # A `joined` with history, or a burst queued for a slow reader, must not be cut.
            max_size=2**22,
            max_queue=1024,
        )

    async def enter(self, ws: ClientConnection, room: str, *, within: float = 30) -> None:
        """Be a member of `room` on an open socket: the project's `join`; nothing for the
        others (their URL is the room)."""
        if self.kind != "chat":
            return
        ref = uuid.uuid4().hex[:16]
        await ws.send(json.dumps({"type": "join", "room": room, "ref": ref}))
        async with asyncio.timeout(within):
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("ref") == ref:
                    if frame.get("type") != "joined":
                        raise RuntimeError(f"join refused: {frame.get('code', frame)}")
                    return

    def send_frame(self, room: str, body: str) -> str:
        if self.kind == "chat":
            return json.dumps({"type": "send", "room": room, "body": body})
        return json.dumps({"message": body})

    def body_of(self, raw: str) -> str | None:
        """The chat text a delivered frame carries, None for any other frame."""
        frame = json.loads(raw)
        if self.kind == "chat":
            return frame["body"] if frame.get("type") == "message" else None
        return frame.get("message")


@dataclass
class Opened:
    """What opening one socket came to: the socket, or why not, and how long it took."""

    ws: ClientConnection | None
    seconds: float
    failure: str | None = None


async def open_one(
    dialect: Dialect, room: str, *, enter: bool = True, open_timeout: float = 30
) -> Opened:
    started = time.perf_counter()
    try:
        ws = await dialect.connect(room, open_timeout=open_timeout)
    except InvalidStatus as exc:
        return Opened(None, time.perf_counter() - started, f"HTTP {exc.response.status_code}")
    except InvalidHandshake as exc:
        return Opened(None, time.perf_counter() - started, type(exc).__name__)
    except TimeoutError:
        return Opened(None, time.perf_counter() - started, "timeout")
    except OSError as exc:
        return Opened(None, time.perf_counter() - started, f"OSError {exc.errno}")
    seconds = time.perf_counter() - started
    if enter:
        try:
            await dialect.enter(ws, room)
        except ConnectionClosed as exc:
            return Opened(None, seconds, f"closed {exc.rcvd.code if exc.rcvd else 1006}")
        except TimeoutError:
            await abort(ws)
            return Opened(None, seconds, "join timeout")
        except RuntimeError as exc:
            await abort(ws)
            return Opened(None, seconds, str(exc))
    return Opened(ws, seconds)


async def open_many(
    dialect: Dialect,
    room: str,
    count: int,
    *,
    concurrency: int,
    enter: bool = True,
    open_timeout: float = 30,
) -> list[Opened]:
    """`count` sockets, at most `concurrency` handshakes (and joins) in flight at once."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Opened:
        async with gate:
            return await open_one(dialect, room, enter=enter, open_timeout=open_timeout)

    return await asyncio.gather(*(one() for _ in range(count)))


async def open_exactly(
    dialect: Dialect, room: str, count: int, *, concurrency: int, attempts: int = 3
) -> tuple[list[ClientConnection], list[str]]:
    """`count` sockets in `room` for a load that needs exactly that many: the ones refused
    are opened again, one at a time (the tutorial's RedisChannelLayer answers HTTP 500 when
    more handshakes are in flight than its Redis pool has connections). Returns the sockets
    and every refusal met on the way; fewer sockets than `count` only after `attempts`."""
    opened = await open_many(dialect, room, count, concurrency=concurrency)
    sockets = [o.ws for o in opened if o.ws is not None]
    refusals = [o.failure for o in opened if o.failure]
    for _ in range(attempts):
        if len(sockets) >= count:
            break
        again = await open_many(dialect, room, count - len(sockets), concurrency=1)
        sockets += [o.ws for o in again if o.ws is not None]
        refusals += [o.failure for o in again if o.failure]
    return sockets, refusals


def is_open(ws: ClientConnection) -> bool:
    return ws.state is State.OPEN


def close_code(ws: ClientConnection) -> str:
    """Why a socket the server accepted is no longer open (the project refuses by closing)."""
    # The close frame the server sent, even while the closing handshake is still running.
    rcvd = ws.protocol.close_rcvd
    return f"closed {rcvd.code if rcvd else 1006}"


async def abort(ws: ClientConnection) -> None:
    """Drop the TCP connection without a closing handshake: faster than 10,000 closes, and
    the servers see a client going away, which they must handle anyway."""
    ws.transport.abort()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.wait_closed(), 5)


async def close_all(sockets: list[ClientConnection], *, concurrency: int = 200) -> None:
    """Close with the closing handshake, as a leaving client does, a batch at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(ws: ClientConnection) -> None:
        async with gate:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 10)
            if ws.state is not State.CLOSED:
                ws.transport.abort()

    await asyncio.gather(*(one(ws) for ws in sockets))


@dataclass
class Tally:
    """Deliveries of the benchmark's messages counted across many reading sockets."""

    marker: str
    expected: int
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # Per delivery, when latency is wanted: seconds from the body's send time to arrival.
    latencies: list[float] | None = None
    dialect: Dialect | None = None

    def seen(self, raw: str) -> None:
        now = time.perf_counter()
        if self.latencies is not None and self.dialect is not None:
            body = self.dialect.body_of(raw)
            if body is None:
                return
            # The body ends with the perf_counter() time the sender meant to send it at.
            self.latencies.append(now - float(body.rsplit(" ", 1)[1]))
        if not self.first:
            self.first = now
        self.last = now
        self.count += 1
        if self.count >= self.expected:
            self.done.set()


async def read_into(ws: ClientConnection, tally: Tally) -> None:
    """Count the benchmark's deliveries on one socket until it closes or is cancelled."""
    marker = tally.marker
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            # A substring test, not a JSON parse: the burst benchmark must not be limited
            # by the client. Other frames (acks, presence) never carry the marker.
            if marker in raw:
                tally.seen(raw)


async def drain(ws: ClientConnection) -> None:
    """Read and discard everything (the sender's acks and echoes), so nothing backs up."""
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


async def wait_for_deliveries(tally: Tally, *, idle: float, within: float) -> None:
    """After the last send: until every expected delivery arrived, or nothing arrived for
    `idle` seconds (the rest were dropped), or `within` seconds."""
    started = time.perf_counter()
    while not tally.done.is_set():
        now = time.perf_counter()
        if now - started > within or now - max(tally.last, started) > idle:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tally.done.wait(), 0.25)
