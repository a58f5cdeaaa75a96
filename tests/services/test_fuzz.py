"""Random frames and random bytes through a real daphne (property-based, hypothesis).

Whatever a client sends, the process stays up, every reply is a documented frame (an error
carries a documented code), every close carries a documented code, and nothing the server
logs is a traceback.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from realtime.protocol import CloseCode, ErrorCode
from tests.services.support.api import Account, Api
from tests.services.support.daphne import Server
from tests.services.support.sockets import ws_connect

pytestmark = pytest.mark.services

# Server frame types of docs/protocol.md.
SERVER_TYPES = {"joined", "left", "ack", "message", "pong", "refreshed", "error"}
ERROR_CODES = {str(code) for code in ErrorCode}
CLOSE_CODES = {int(code) for code in CloseCode}
# A socket stays under its rate limit (a burst of 20) with this many frames per example.
FRAMES_PER_EXAMPLE = 6

# Text without lone surrogates: a client cannot put one in a text frame (UTF-8 has none).
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
FIELDS = ("type", "room", "body", "ref", "token", "since", "extra")
TYPES = ("join", "leave", "send", "ping", "refresh")


@st.composite
def frames(draw: st.DrawFn, rooms: tuple[str, ...]) -> str | bytes:
    kind = draw(st.sampled_from(["object", "json", "text", "bytes", "surrogate"]))
    if kind == "surrogate":
        # JSON can still spell a lone surrogate as an escape, in any key or value.
        escape = "\\u" + draw(st.sampled_from(["d800", "dbff", "DC00", "dfff"]))
        field = draw(st.sampled_from(FIELDS))
        return draw(
            st.sampled_from(
                [
                    f'{{"type": "ping", "{field}": "{escape}"}}',
                    f'{{"type": "send", "room": "{rooms[0]}", "body": "x{escape}"}}',
                    f'{{"{escape}": 1}}',
                ]
            )
        )
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "text":
        return draw(texts)
    if kind == "json":
        return json.dumps(draw(json_values))
    frame: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=5)):
        frame[name] = draw(json_values)
    if draw(st.booleans()):
        frame["type"] = draw(st.sampled_from(TYPES))
    if draw(st.booleans()):
        frame["room"] = draw(st.sampled_from(rooms))
    return json.dumps(frame, ensure_ascii=draw(st.booleans()))


@pytest.fixture(scope="module")
def fuzz_target(server_pair: tuple[Server, Server]) -> tuple[Server, Account, tuple[str, ...]]:
    server = server_pair[0]
    api = Api(server)
    owner, member = api.account(), api.account()
    public, private = api.room(owner), api.room(owner, private=True)
    return server, member, (public, private, "no-such-room", "Bad Slug")


async def exchange(server: Server, token: str, batch: list[str | bytes]) -> tuple[list, int]:
    """Send the batch, then read until quiet or closed: the frames and the close code (0 if
    the socket stayed open)."""
    frames_in: list[dict[str, Any]] = []
    async with ws_connect(server, token=token) as ws:
        try:
            for frame in batch:
                await ws.send(frame)
            await ws.send(json.dumps({"type": "ping", "ref": "end"}))
            async with asyncio.timeout(10):
                while True:
                    reply = json.loads(await ws.recv())
                    frames_in.append(reply)
                    if reply.get("ref") == "end" and reply["type"] == "pong":
                        return frames_in, 0
        except ConnectionClosed as closed:
            # -1: dropped without a close frame, which the caller's check refuses.
            return frames_in, -1 if closed.rcvd is None else closed.rcvd.code


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_frames_get_documented_answers(
    fuzz_target: tuple[Server, Account, tuple[str, ...]], data: st.DataObject
) -> None:
    server, account, rooms = fuzz_target
    batch = data.draw(st.lists(frames(rooms), min_size=1, max_size=FRAMES_PER_EXAMPLE))
    replies, code = asyncio.run(exchange(server, account.access, batch))
    for reply in replies:
        assert reply["type"] in SERVER_TYPES, reply
        if reply["type"] == "error":
            assert reply["code"] in ERROR_CODES, reply
            assert reply["code"] != "internal", (batch, reply)
    assert code == 0 or code in CLOSE_CODES, (batch, code)
    assert code != CloseCode.INTERNAL_ERROR, batch
    assert server.alive()


def test_the_fuzzed_server_logged_no_traceback(
    fuzz_target: tuple[Server, Account, tuple[str, ...]],
) -> None:
    # Runs after the property above (same module, file order).
    server, _, _ = fuzz_target
    assert server.alive()
    assert "Traceback" not in server.all_output()
