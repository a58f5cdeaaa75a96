"""parse_frame and the server frame builders (realtime.protocol), without a socket."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import override_settings

from realtime.protocol import (
    VIOLATIONS,
    CloseCode,
    ErrorCode,
    Join,
    Leave,
    Ping,
    ProtocolError,
    Send,
    ack_frame,
    encode,
    error_frame,
    joined_frame,
    left_frame,
    message_frame,
    parse_frame,
    pong_frame,
)

MARKER = "zq-marker-7c1f"


def parse(frame: object) -> object:
    return parse_frame(json.dumps(frame, ensure_ascii=False), None)


def refused(text: str | None, data: bytes | None = None) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_frame(text, data)
    return caught.value


def refused_json(frame: object) -> ProtocolError:
    return refused(json.dumps(frame, ensure_ascii=False))


# --- Valid frames ------------------------------------------------------------------------------


def test_each_client_frame_type_parses_to_its_schema():
    assert parse({"type": "join", "room": "general"}) == Join(type="join", room="general")
    assert parse({"type": "leave", "room": "general", "ref": "r"}) == Leave(
        type="leave", room="general", ref="r"
    )
    assert parse({"type": "send", "room": "general", "body": "hi"}) == Send(
        type="send", room="general", body="hi"
    )
    assert parse({"type": "ping"}) == Ping(type="ping")


def test_ref_is_optional_and_kept():
    assert parse({"type": "ping"}).ref is None
    assert parse({"type": "ping", "ref": "r" * 64}).ref == "r" * 64
    assert parse({"type": "ping", "ref": None}).ref is None


@pytest.mark.parametrize("room", ["a", "0", "general", "room-2", "a-", "a" * 50, "0-0-0"])
def test_valid_room_slugs(room):
    assert parse({"type": "join", "room": room}).room == room


def test_body_keeps_whitespace_and_unicode():
    body = "  héllo\n\tworld 🙂  "
    assert parse({"type": "send", "room": "r", "body": body}).body == body


def test_body_of_max_chars_four_byte_characters_fits_the_default_frame_limit():
    # The default MAX_FRAME_BYTES is sized so that the longest body always fits, whatever
    # characters it is made of.
    body = "😀" * settings.REALTIME["MAX_BODY_CHARS"]
    assert parse({"type": "send", "room": "r", "body": body}).body == body


# --- Frame-level errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "data"), [(None, b'{"type": "ping"}'), (None, None), ("", None), (None, b"")]
)
def test_binary_and_empty_frames_are_invalid_frame(text, data):
    assert refused(text, data).code == ErrorCode.INVALID_FRAME


@pytest.mark.parametrize("text", ["{", "ping", "{'type': 'ping'}", '{"type": "ping",}', "\x00"])
def test_non_json_is_invalid_json(text):
    error = refused(text)
    assert error.code == ErrorCode.INVALID_JSON
    assert error.ref is None


@pytest.mark.parametrize("text", ["[]", '"ping"', "1", "null", "true", "NaN"])
def test_json_that_is_not_an_object_is_invalid_message(text):
    assert refused(text).code == ErrorCode.INVALID_MESSAGE


@override_settings(REALTIME={**settings.REALTIME, "MAX_FRAME_BYTES": 100})
def test_frame_size_is_counted_in_utf8_bytes_not_characters():
    envelope = json.dumps({"type": "send", "room": "r", "body": ""}, ensure_ascii=False)
    room_left = 100 - len(envelope.encode())
    fits = envelope[:-2] + "😀" * (room_left // 4) + "x" * (room_left % 4) + envelope[-2:]
    assert len(fits.encode()) == 100
    assert isinstance(parse_frame(fits, None), Send)

    too_big = envelope[:-2] + "😀" * (room_left // 4 + 1) + envelope[-2:]
    # Under the limit in characters, over it in bytes.
    assert len(too_big) < 100 < len(too_big.encode())
    error = refused(too_big)
    assert error.code == ErrorCode.TOO_LARGE
    assert error.ref is None
    assert "100 bytes" in error.message


@override_settings(REALTIME={**settings.REALTIME, "MAX_FRAME_BYTES": 100})
def test_oversized_frame_is_refused_before_parsing():
    # Not even valid JSON: the size check must come first and not pay for a parse.
    assert refused("{" * 101).code == ErrorCode.TOO_LARGE


# --- Types -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"ref": "r1"},
        {"type": "shout", "ref": "r1"},
        {"type": "", "ref": "r1"},
        {"type": "Ping", "ref": "r1"},
        {"type": 1, "ref": "r1"},
        {"type": None, "ref": "r1"},
        {"type": ["ping"], "ref": "r1"},
        {"type": "error", "ref": "r1"},
        {"type": "message", "ref": "r1"},
    ],
)
def test_missing_or_unknown_type_is_unknown_type_with_ref(frame):
    error = refused_json(frame)
    assert error.code == ErrorCode.UNKNOWN_TYPE
    assert error.ref == "r1"
    assert "join, leave, send, ping" in error.message


# --- Schemas -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "ping", "room": "general"},
        {"type": "join", "room": "general", "body": "x"},
        {"type": "leave", "room": "general", "extra": None},
        {"type": "send", "room": "general", "body": "x", "id": 1},
    ],
)
def test_unknown_fields_are_invalid_message(frame):
    error = refused_json({**frame, "ref": "r1"})
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert error.ref == "r1"


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "join"},
        {"type": "leave"},
        {"type": "send", "room": "general"},
        {"type": "send", "body": "hi"},
    ],
)
def test_missing_required_fields_are_invalid_message(frame):
    error = refused_json({**frame, "ref": "r1"})
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert error.ref == "r1"
    assert "Field required" in error.message


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "join", "room": 5},
        {"type": "join", "room": None},
        {"type": "join", "room": ["general"]},
        {"type": "send", "room": "general", "body": 123},
        {"type": "send", "room": "general", "body": True},
        {"type": "send", "room": "general", "body": {"text": "hi"}},
    ],
)
def test_wrong_field_types_are_invalid_message_without_coercion(frame):
    error = refused_json({**frame, "ref": "r1"})
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert error.ref == "r1"


@pytest.mark.parametrize(
    "room", ["", "-general", "General", "gen_eral", "gen eral", "a" * 51, "général", "abc\n"]
)
def test_bad_room_slugs_are_invalid_message(room):
    error = refused_json({"type": "join", "room": room, "ref": "r1"})
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert error.message.startswith("room:")


@pytest.mark.parametrize("ref", ["", "r" * 65, 7, 1.5, True, ["r"], {"r": 1}])
def test_bad_ref_is_invalid_message_and_not_echoed(ref):
    error = refused_json({"type": "ping", "ref": ref})
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert error.ref is None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("", "at least 1 character"),
        (" ", "blank"),
        ("\n\t \r\n", "blank"),
        ("\u3000", "blank"),
        ("a\x00b", "NUL"),
        ("x" * 4001, "at most 4000 characters"),
    ],
)
def test_bad_bodies_are_invalid_message(body, fragment):
    error = refused_json({"type": "send", "room": "r", "body": body, "ref": "r1"})
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert error.ref == "r1"
    assert fragment in error.message


@override_settings(REALTIME={**settings.REALTIME, "MAX_BODY_CHARS": 5})
def test_body_limit_counts_characters_and_follows_settings():
    assert parse({"type": "send", "room": "r", "body": "😀" * 5}).body == "😀" * 5
    error = refused_json({"type": "send", "room": "r", "body": "😀" * 6})
    assert error.code == ErrorCode.INVALID_MESSAGE
    assert "at most 5 characters" in error.message


def test_first_three_schema_violations_are_described():
    error = refused_json({"type": "send", "room": 1, "body": 2, "a": 3, "b": 4})
    assert error.message.count(";") == 2


# --- Error messages reflect nothing the client sent --------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "{" + MARKER,
        json.dumps({"type": MARKER}),
        json.dumps({"type": "join", "room": MARKER.upper()}),
        json.dumps({"type": "join", "room": [MARKER]}),
        json.dumps({"type": "send", "room": "r", "body": MARKER * 400}),
        json.dumps({"type": "send", "room": "r", "body": f"{MARKER}\x00"}),
        json.dumps({"type": "send", "room": "r", "body": {MARKER: MARKER}}),
        json.dumps({"type": "ping", "extra": MARKER}),
        json.dumps({"type": "ping", "ref": MARKER * 10}),
        json.dumps([MARKER]),
    ],
)
def test_error_messages_contain_no_client_values(text):
    error = refused(text)
    assert MARKER not in error.message
    assert MARKER.upper() not in error.message
    assert error.ref is None or MARKER not in error.ref


# --- Codes and server frames -------------------------------------------------------------------


def test_close_and_error_codes_are_the_documented_wire_values():
    # Clients switch on these numbers and strings; renumbering them breaks deployed clients.
    assert {c.name: int(c) for c in CloseCode} == {
        "NORMAL": 1000,
        "GOING_AWAY": 1001,
        "MESSAGE_TOO_BIG": 1009,
        "INTERNAL_ERROR": 1011,
        "TRY_AGAIN_LATER": 1013,
        "UNAUTHENTICATED": 4001,
        "FORBIDDEN": 4003,
        "RATE_LIMITED": 4008,
        "TOO_MANY_CONNECTIONS": 4009,
        "PROTOCOL_VIOLATION": 4400,
    }
    assert {str(c) for c in ErrorCode} == {
        "invalid_json",
        "invalid_frame",
        "too_large",
        "unknown_type",
        "invalid_message",
        "not_found",
        "forbidden",
        "not_joined",
        "too_many_rooms",
        "rate_limited",
        "unavailable",
        "internal",
    }


def test_only_malformed_frames_count_as_violations():
    assert {
        ErrorCode.INVALID_JSON,
        ErrorCode.INVALID_FRAME,
        ErrorCode.TOO_LARGE,
        ErrorCode.UNKNOWN_TYPE,
        ErrorCode.INVALID_MESSAGE,
    } == VIOLATIONS


def test_server_frames():
    assert error_frame(ErrorCode.NOT_FOUND, "No such room.", None) == {
        "type": "error",
        "code": "not_found",
        "message": "No such room.",
        "ref": None,
    }
    assert joined_frame("r", [], "j") == {"type": "joined", "room": "r", "history": [], "ref": "j"}
    assert joined_frame("r", [], None) == {"type": "joined", "room": "r", "history": []}
    assert left_frame("r", "l") == {"type": "left", "room": "r", "ref": "l"}
    assert left_frame("r", None, reason="room_deleted") == {
        "type": "left",
        "room": "r",
        "reason": "room_deleted",
    }
    assert ack_frame(7, "s") == {"type": "ack", "id": 7, "ref": "s"}
    assert ack_frame(7, None) == {"type": "ack", "id": 7}
    assert pong_frame(None) == {"type": "pong"}
    assert message_frame({"room": "r", "id": 1}) == {"type": "message", "room": "r", "id": 1}


def test_encode_is_compact_utf8_json():
    assert encode({"type": "message", "body": "é😀"}) == '{"type":"message","body":"é😀"}'
