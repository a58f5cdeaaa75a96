"""The wire protocol of /ws/chat/: frame schemas, error codes and close codes.

Design and client guidance: docs/protocol.md. Every client frame is a JSON object with a
`type`; each type has a schema here that forbids unknown fields. Server frames are built by
the functions at the bottom, so their shape is defined in one place too.
"""

from __future__ import annotations

import json
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from realtime.conf import realtime_settings


class CloseCode(IntEnum):
    """WebSocket close codes the server sends, and what the client should do (docs/protocol.md)."""

    NORMAL = 1000  # done; do not reconnect
    GOING_AWAY = 1001  # server restarting; reconnect (with jitter)
    MESSAGE_TOO_BIG = 1009  # sent by daphne past TRANSPORT_MAX_MESSAGE_BYTES; fix the client
    INTERNAL_ERROR = 1011  # server bug; reconnect with backoff
    TRY_AGAIN_LATER = 1013  # a backing service (Redis, database) failed; reconnect with backoff
    UNAUTHENTICATED = 4001  # missing, invalid or expired credentials; refresh, then reconnect
    FORBIDDEN = 4003  # origin refused, account disabled, token in URL; do not reconnect
    RATE_LIMITED = 4008  # kept flooding after rate_limited errors; reconnect after a pause
    TOO_MANY_CONNECTIONS = 4009  # per-user connection cap reached; close another tab first
    PROTOCOL_VIOLATION = 4400  # too many malformed frames; do not reconnect (client bug)


class ErrorCode(StrEnum):
    """`code` of an `error` frame. The socket stays open after every one of them."""

    INVALID_JSON = "invalid_json"  # the text frame is not JSON
    INVALID_FRAME = "invalid_frame"  # a binary or empty frame
    TOO_LARGE = "too_large"  # a text frame over MAX_FRAME_BYTES
    UNKNOWN_TYPE = "unknown_type"  # `type` missing, not a string, or not a client type
    INVALID_MESSAGE = "invalid_message"  # the frame does not match its type's schema
    NOT_FOUND = "not_found"  # no such room
    FORBIDDEN = "forbidden"  # private room and not a member
    NOT_JOINED = "not_joined"  # send/leave for a room this socket has not joined
    TOO_MANY_ROOMS = "too_many_rooms"  # MAX_ROOMS_PER_CONNECTION reached
    RATE_LIMITED = "rate_limited"  # frame dropped: over the per-connection rate
    UNAVAILABLE = "unavailable"  # Redis or the database failed; retry the frame later
    INTERNAL = "internal"  # unexpected server error; retry later


# Errors that mean the client sent something broken; MAX_PROTOCOL_ERRORS of them close 4400.
VIOLATIONS = frozenset(
    {
        ErrorCode.INVALID_JSON,
        ErrorCode.INVALID_FRAME,
        ErrorCode.TOO_LARGE,
        ErrorCode.UNKNOWN_TYPE,
        ErrorCode.INVALID_MESSAGE,
    }
)

# Lowercase letters, digits and hyphens: safe in URLs, group names and logs.
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,49}$"
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
# Clients correlate replies with requests; 64 characters fits a UUID with room to spare.
Ref = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ProtocolError(Exception):
    """A client frame the server answers with an `error` frame instead of acting on it."""

    def __init__(self, code: ErrorCode, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


class _Frame(BaseModel):
    # strict: "1" is not a number, 1 is not a string; forbid: unknown fields are errors.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    ref: Ref | None = None


class Join(_Frame):
    type: Literal["join"]
    room: Slug


class Leave(_Frame):
    type: Literal["leave"]
    room: Slug


class Send(_Frame):
    type: Literal["send"]
    room: Slug
    # The length cap comes from settings and is checked in `parse_frame`.
    body: Annotated[str, StringConstraints(min_length=1)]


class Ping(_Frame):
    type: Literal["ping"]


ClientFrame = Join | Leave | Send | Ping
FRAME_TYPES: dict[str, type[_Frame]] = {"join": Join, "leave": Leave, "send": Send, "ping": Ping}


def _safe_ref(content: dict[str, Any]) -> str | None:
    """The frame's ref if it is a valid one, so even an error reply can be correlated."""
    ref = content.get("ref")
    return ref if isinstance(ref, str) and 0 < len(ref) <= 64 else None


def _describe(error: ValidationError) -> str:
    """A short, input-free description of the first schema violations."""
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:3]:
        where = ".".join(str(part) for part in item["loc"]) or "frame"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_frame(text: str | None, data: bytes | None) -> ClientFrame:
    """Decode and validate one client frame; raise ProtocolError with the matching code."""
    limits = realtime_settings()
    if text is None or text == "":
        raise ProtocolError(ErrorCode.INVALID_FRAME, "Send JSON objects in text frames.")
    if len(text) > limits.MAX_FRAME_BYTES or len(text.encode()) > limits.MAX_FRAME_BYTES:
        raise ProtocolError(
            ErrorCode.TOO_LARGE, f"Frames are limited to {limits.MAX_FRAME_BYTES} bytes."
        )
    try:
        content = json.loads(text)
    except ValueError:
        raise ProtocolError(ErrorCode.INVALID_JSON, "The frame is not valid JSON.") from None
    if not isinstance(content, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "A frame must be a JSON object.")
    ref = _safe_ref(content)
    frame_type = content.get("type")
    schema = FRAME_TYPES.get(frame_type) if isinstance(frame_type, str) else None
    if schema is None:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE, f"type must be one of {', '.join(FRAME_TYPES)}.", ref
        )
    try:
        frame = schema.model_validate(content)
    except ValidationError as exc:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, _describe(exc), ref) from None
    if isinstance(frame, Send):
        _check_body(frame.body, limits.MAX_BODY_CHARS, ref)
    return frame


def _check_body(body: str, max_chars: int, ref: str | None) -> None:
    if len(body) > max_chars:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, f"body: at most {max_chars} characters.", ref
        )
    if not body.strip():
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "body: must not be blank.", ref)
    # PostgreSQL text cannot hold NUL, and no chat client means to send one.
    if "\x00" in body:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "body: must not contain NUL.", ref)


# --- Server frames -----------------------------------------------------------------------------


def _with_ref(frame: dict[str, Any], ref: str | None) -> dict[str, Any]:
    if ref is not None:
        frame["ref"] = ref
    return frame


def error_frame(code: ErrorCode, message: str, ref: str | None) -> dict[str, Any]:
    return {"type": "error", "code": str(code), "message": message, "ref": ref}


def joined_frame(room: str, history: list[dict[str, Any]], ref: str | None) -> dict[str, Any]:
    return _with_ref({"type": "joined", "room": room, "history": history}, ref)


def left_frame(room: str, ref: str | None, reason: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "left", "room": room}
    if reason is not None:
        frame["reason"] = reason
    return _with_ref(frame, ref)


def ack_frame(message_id: int, ref: str | None) -> dict[str, Any]:
    return _with_ref({"type": "ack", "id": message_id}, ref)


def pong_frame(ref: str | None) -> dict[str, Any]:
    return _with_ref({"type": "pong"}, ref)


def message_frame(message: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", **message}


def encode(frame: dict[str, Any]) -> str:
    """Compact JSON, the one encoder for every server frame."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
