"""parse_frame and the server frame builders (realtime.protocol), without a socket."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import override_settings

from realtime.protocol import (
    CloseAction,
    CloseCode,
    ErrorCode,
    Join,
    Leave,
    Ping,
    ProtocolError,
    Send,
    close_action,
    parse_frame,
    wire_code,
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
    assert "join, leave, send, typing, ping, refresh" in error.message


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


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (CloseCode.RATE_LIMITED, CloseAction.RECONNECT),
        (CloseCode.TOO_MANY_CONNECTIONS, CloseAction.RECONNECT),
        (CloseCode.SLOW_CLIENT, CloseAction.RECONNECT),
        (CloseCode.TRY_AGAIN_LATER, CloseAction.RECONNECT),
        (CloseCode.UNAUTHENTICATED, CloseAction.REAUTHENTICATE),
        (CloseCode.TOKEN_EXPIRED, CloseAction.REAUTHENTICATE),
        (CloseCode.SESSION_REVOKED, CloseAction.REAUTHENTICATE),
        (CloseCode.PROTOCOL_VIOLATION, CloseAction.STOP),
        (CloseCode.FORBIDDEN, CloseAction.STOP),
        (CloseCode.NORMAL, CloseAction.RECONNECT),
        (CloseCode.GOING_AWAY, CloseAction.RECONNECT),
        (1006, CloseAction.RECONNECT),
        (CloseCode.INTERNAL_ERROR, CloseAction.RECONNECT),
        (4999, CloseAction.RECONNECT),
        (4199, CloseAction.REAUTHENTICATE),
        (4499, CloseAction.STOP),
    ],
)
def test_a_client_acts_on_the_code_range(code, action):
    assert close_action(int(code)) is action


def test_every_code_the_application_sends_is_one_stock_daphne_can_send():
    for code in CloseCode:
        if code in (CloseCode.GOING_AWAY, CloseCode.MESSAGE_TOO_BIG, CloseCode.INTERNAL_ERROR):
            # Sent by the server itself, never by the application.
            with pytest.raises(ValueError, match="daphne refuses it"):
                wire_code(code)
        else:
            value = wire_code(code)
            # autobahn's sendClose checks type(code) == int: an IntEnum is refused.
            assert type(value) is int
            assert value == 1000 or 4000 <= value <= 4999


# --- Unicode and nesting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "ping", "ref": "\\ud800"}',
        '{"type": "send", "room": "r", "body": "ok\\udfffok"}',
        '{"type": "ping", "\\udc00": 1}',
        '{"type": "ping", "extra": ["\\udbff"]}',
    ],
)
def test_a_lone_surrogate_anywhere_is_invalid_message_without_its_ref(text):
    error = refused(text)
    assert (error.code, error.ref) == (ErrorCode.INVALID_MESSAGE, None)


def test_a_surrogate_pair_escape_is_one_character():
    frame = parse_frame(
        '{"type": "send", "room": "r", "body": "\\ud83d\\ude00", "ref": "a"}', None
    )
    assert frame.body == "😀"


def test_the_longest_body_fits_the_frame_cap_whatever_its_escaping():
    body = "😀" * 4000
    text = json.dumps({"type": "send", "room": "r" * 50, "body": body, "ref": "\U0001f600" * 64})
    assert len(text.encode()) > 48_000
    assert parse_frame(text, None).body == body


@pytest.mark.parametrize("depth", [1_000, 20_000])
def test_deep_nesting_is_invalid_json_not_a_crash(depth):
    error = refused("[" * depth + "]" * depth)
    assert error.code == ErrorCode.INVALID_JSON


def test_unknown_field_names_are_not_repeated_in_the_error():
    error = refused_json({"type": "ping", MARKER: 1})
    assert MARKER not in error.message
    assert "unknown field" in error.message
