"""The wire protocol of /ws/chat/: client frame schemas, error codes and close codes.

Design and client guidance: docs/protocol.md. Every client frame is a JSON object with a
`type`; each type has a schema here that forbids unknown fields. Server frames are typed
the same way in realtime.frames.
"""

from __future__ import annotations

import json
import re
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from realtime.conf import realtime_settings


class CloseCode(IntEnum):
    """WebSocket close codes the server sends (docs/protocol.md, "Close codes").

    A client acts on the range, without a table: 4400-4499 means do not reconnect (tell the
    person); 4100-4199 means get a fresh access token (refresh, or sign in again), then
    reconnect; anything else means reconnect after a full-jitter backoff. Every code the
    application sends is 1000 or in 4000-4999, the only ones autobahn (hence stock daphne)
    can send; 1001 and 1009 come from `manage.py serve`'s server and 1011 from daphne itself.
    """

    NORMAL = 1000  # daphne's 24-hour socket age limit; reconnect
    GOING_AWAY = 1001  # the server is shutting down (manage.py serve); reconnect
    MESSAGE_TOO_BIG = 1009  # a message over the transport cap (manage.py serve); reconnect
    INTERNAL_ERROR = 1011  # sent by daphne when the application crashed; reconnect
    # 4000-4099: transient; back off, then reconnect.
    RATE_LIMITED = 4008  # kept flooding after rate_limited errors
    TOO_MANY_CONNECTIONS = 4009  # the user or the address is at its socket cap
    SLOW_CLIENT = 4010  # stopped reading: unsent output passed its bound (manage.py serve)
    TRY_AGAIN_LATER = 4013  # Redis or the database failed, or too busy now
    # 4100-4199: credentials; refresh the access token (or sign in), then reconnect.
    UNAUTHENTICATED = 4101  # no, invalid or expired credentials at the handshake
    TOKEN_EXPIRED = 4102  # the socket outlived its access token and got no `refresh`
    SESSION_REVOKED = 4103  # signed out, password changed, or a refresh token was replayed
    # 4400-4499: permanent; do not reconnect.
    PROTOCOL_VIOLATION = 4400  # too many malformed frames: the client is broken
    FORBIDDEN = 4403  # origin refused, token in the URL, unknown path, account disabled


class CloseAction(StrEnum):
    """What a client does after a close, decided by the code's range alone."""

    RECONNECT = "reconnect"
    REAUTHENTICATE = "reauthenticate"
    STOP = "stop"


def close_action(code: int) -> CloseAction:
    """The client's move after the server closed with `code` (any code, ours or not)."""
    if 4400 <= code <= 4499:
        return CloseAction.STOP
    if 4100 <= code <= 4199:
        return CloseAction.REAUTHENTICATE
    return CloseAction.RECONNECT


def wire_code(code: int) -> int:
    """The plain int to hand to the ASGI server: autobahn refuses an IntEnum, and any code
    but 1000 or 3000-4999 unless the server sends it itself (realtime.server)."""
    value = int(code)
    if value != 1000 and not 4000 <= value <= 4999:
        raise ValueError(f"the application cannot close with {value}; daphne refuses it")
    return value


class ErrorCode(StrEnum):
    """`code` of an `error` frame. The socket stays open after every one of them."""

    INVALID_JSON = "invalid_json"  # the text frame is not JSON
    INVALID_FRAME = "invalid_frame"  # a binary or empty frame
    TOO_LARGE = "too_large"  # a text frame over MAX_FRAME_BYTES
    UNKNOWN_TYPE = "unknown_type"  # `type` missing, not a string, or not a client type
    INVALID_MESSAGE = "invalid_message"  # the frame does not match its type's schema
    INVALID_TOKEN = "invalid_token"  # noqa: S105 (`refresh` with a bad or foreign token)
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
# A sender's id for a message: a UUID or any other URL-safe token, stored with the message.
ClientId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


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

    if TYPE_CHECKING:
        # A frame is never falsy (no __bool__ or __len__), so `frame and frame.ref` is a ref.
        def __bool__(self) -> Literal[True]: ...


class Join(_Frame):
    type: Literal["join"]
    room: Slug
    # Resume: the seq of the last message the client holds of this room...
    since: Annotated[int, Field(ge=0)] | None = None
    # ...and the room's epoch from the `joined` it came with (a recreated room has another).
    epoch: Annotated[str, StringConstraints(max_length=32)] | None = None


class Leave(_Frame):
    type: Literal["leave"]
    room: Slug


class Send(_Frame):
    type: Literal["send"]
    room: Slug
    # The length cap comes from settings and is checked in `parse_frame`.
    body: Annotated[str, StringConstraints(min_length=1)]
    # The client's own id for this message: a retry with the same id stores nothing new.
    client_id: ClientId | None = None


class Ping(_Frame):
    type: Literal["ping"]


class Typing(_Frame):
    type: Literal["typing"]
    room: Slug


class Refresh(_Frame):
    type: Literal["refresh"]
    # A new access token for the same user; never logged. SimpleJWT's are about 300 bytes.
    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


ClientFrame = Join | Leave | Send | Typing | Ping | Refresh
FRAME_TYPES: dict[str, type[ClientFrame]] = {
    "join": Join,
    "leave": Leave,
    "send": Send,
    "typing": Typing,
    "ping": Ping,
    "refresh": Refresh,
}

# A `\u` escape of a UTF-16 surrogate; only such an escape can put one into a decoded string.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _safe_ref(content: dict[str, Any]) -> str | None:
    """The frame's ref if it is a valid one, so even an error reply can be correlated."""
    ref = content.get("ref")
    return ref if isinstance(ref, str) and 0 < len(ref) <= 64 else None


def _has_lone_surrogate(content: Any) -> bool:
    """True if any key or string value holds an unpaired surrogate (no UTF-8 for it).

    Iterative, so a frame nested as deep as the JSON decoder allows cannot exhaust the stack.
    """
    pending = [content]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if any("\ud800" <= char <= "\udfff" for char in value):
                return True
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def _describe(error: ValidationError, schema: type[_Frame]) -> str:
    """A short description of the first schema violations, naming fields, never values.

    An unknown field's name is client data, so it is not repeated either.
    """
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:3]:
        where = ".".join(
            part if isinstance(part, str) and part in schema.model_fields else "<field>"
            for part in item["loc"]
        )
        message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
        parts.append(f"{where or 'frame'}: {message}")
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
    except RecursionError:
        raise ProtocolError(ErrorCode.INVALID_JSON, "The frame is nested too deeply.") from None
    if _ESCAPED_SURROGATE.search(text) and _has_lone_surrogate(content):
        # It could not be echoed back or stored: UTF-8 has no encoding for it.
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "Strings must be valid Unicode.")
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
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, _describe(exc, schema), ref) from None
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
