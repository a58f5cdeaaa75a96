"""Server frames: each builder makes a frame of its typed model, and encode writes exactly the
fields that were set (an error's ref always)."""

from __future__ import annotations

import json

import pytest

from realtime import frames
from realtime.protocol import ErrorCode

USER = {"id": 7, "username": "alice"}
PAYLOAD = {
    "room": "lobby",
    "id": 41,
    "seq": 3,
    "user": USER,
    "body": "hé😀",
    "created_at": "2026-11-28T10:00:00.000000Z",
}


def wire(frame) -> dict:
    return json.loads(frames.encode(frame))


def test_error_always_carries_its_ref_even_null():
    assert wire(frames.error(ErrorCode.NOT_FOUND, "No such room.", None)) == {
        "type": "error",
        "code": "not_found",
        "message": "No such room.",
        "ref": None,
    }


def test_replies_carry_ref_only_when_the_request_had_one():
    assert wire(frames.pong(None)) == {"type": "pong"}
    assert wire(frames.pong("p")) == {"type": "pong", "ref": "p"}
    assert wire(frames.ack(PAYLOAD, "s")) == {"type": "ack", "id": 41, "seq": 3, "ref": "s"}
    assert wire(frames.refreshed(1700000000, None)) == {
        "type": "refreshed",
        "expires_at": 1700000000,
    }
    assert wire(frames.left("lobby", "l")) == {"type": "left", "room": "lobby", "ref": "l"}
    assert wire(frames.left("lobby", None, reason="room_deleted")) == {
        "type": "left",
        "room": "lobby",
        "reason": "room_deleted",
    }


def test_joined_carries_history_presence_and_resume_state():
    frame = frames.joined(
        room="lobby",
        epoch="12",
        seq=3,
        history=[PAYLOAD],
        recovered=True,
        has_more=True,
        presence=[USER],
        ref=None,
    )
    assert wire(frame) == {
        "type": "joined",
        "room": "lobby",
        "epoch": "12",
        "seq": 3,
        "history": [PAYLOAD],
        "recovered": True,
        "has_more": True,
        "presence": [USER],
    }


def test_message_presence_and_typing_frames():
    assert wire(frames.message(PAYLOAD)) == {"type": "message", **PAYLOAD}
    redacted = {**PAYLOAD, "body": "", "redacted": True, "user": None}
    assert wire(frames.message(redacted)) == {"type": "message", **redacted}
    assert wire(frames.presence("lobby", USER, "leave")) == {
        "type": "presence",
        "room": "lobby",
        "user": USER,
        "event": "leave",
    }
    assert wire(frames.typing("lobby", USER)) == {"type": "typing", "room": "lobby", "user": USER}


def test_encode_is_compact_utf8_json():
    assert frames.encode(frames.message(PAYLOAD)).startswith('{"type":"message","room":"lobby",')
    assert '"body":"hé😀"' in frames.encode(frames.message(PAYLOAD))


def test_a_frame_that_breaks_its_model_cannot_be_built():
    with pytest.raises(ValueError, match="seq"):
        frames.message({**PAYLOAD, "seq": 0})
    with pytest.raises(ValueError, match="reason"):
        frames.left("lobby", None, reason="bored")


def test_fit_history_keeps_the_newest_that_fit():
    one = len(json.dumps(PAYLOAD, separators=(",", ":"), ensure_ascii=False).encode()) + 1
    history = [{**PAYLOAD, "seq": seq} for seq in range(1, 6)]
    kept, truncated = frames.fit_history(history, 3 * one)
    assert [m["seq"] for m in kept] == [3, 4, 5]
    assert truncated
    assert frames.fit_history(history, 5 * one) == (history, False)
