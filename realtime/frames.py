"""Server frames of /ws/chat/: one typed model per frame, built here and nowhere else.

The models are the contract (docs/protocol.md, and the JSON Schemas of docs/asyncapi.json,
which realtime.asyncapi generates from them). `encode` is the one encoder: compact JSON,
UTF-8, only the fields a builder set (an `error`'s `ref` is always set, null or not).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from realtime.protocol import ErrorCode

PresenceEvent = Literal["join", "leave"]
LeaveReason = Literal["room_deleted", "membership_revoked"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UserRef(_Model):
    """A user as other people see them."""

    id: int
    username: str


class MessagePayload(_Model):
    """A stored message: in `message` frames, in `joined.history`, and over REST."""

    room: str
    # Database id, unique across rooms.
    id: int
    # Position in its room: 1, 2, 3... with no gaps and no repeats.
    seq: Annotated[int, Field(ge=1)]
    # null once the author's account is deleted.
    user: UserRef | None
    body: str
    # ISO 8601, UTC, with a Z.
    created_at: str
    # Present (true) once a moderator redacted it; the body is then empty.
    redacted: Literal[True] | None = None


class Joined(_Model):
    type: Literal["joined"]
    room: str
    # Changes when a room of this slug is deleted and another created: seqs start over.
    epoch: str
    # The room's latest seq when the history was read.
    seq: int
    history: list[MessagePayload]
    # True: `history` is every message after the `since` asked for, nothing missing.
    recovered: bool
    # True: messages older than the first of `history` exist (page back over REST).
    has_more: bool
    # The users with at least one socket in the room.
    presence: list[UserRef]
    ref: str | None = None


class Left(_Model):
    type: Literal["left"]
    room: str
    # Set when the server made the socket leave; absent in reply to `leave`.
    reason: LeaveReason | None = None
    ref: str | None = None


class Ack(_Model):
    type: Literal["ack"]
    id: int
    seq: int
    ref: str | None = None


class _MessageType(_Model):
    type: Literal["message"]


# MessagePayload's fields after `type` (pydantic orders fields by the bases, last first).
class Message(MessagePayload, _MessageType):
    pass


class Presence(_Model):
    type: Literal["presence"]
    room: str
    user: UserRef
    event: PresenceEvent


class TypingNotice(_Model):
    type: Literal["typing"]
    room: str
    user: UserRef


class Pong(_Model):
    type: Literal["pong"]
    ref: str | None = None


class Refreshed(_Model):
    type: Literal["refreshed"]
    # Unix seconds: the socket's new expiry (plus the grace).
    expires_at: int
    ref: str | None = None


class Error(_Model):
    type: Literal["error"]
    code: ErrorCode
    message: str
    # The frame's ref, or null when it had no valid one: always present.
    ref: str | None


SERVER_FRAMES: dict[str, type[_Model]] = {
    "joined": Joined,
    "left": Left,
    "ack": Ack,
    "message": Message,
    "presence": Presence,
    "typing": TypingNotice,
    "pong": Pong,
    "refreshed": Refreshed,
    "error": Error,
}


def _ref(ref: str | None) -> dict[str, str]:
    return {} if ref is None else {"ref": ref}


def error(code: ErrorCode, message: str, ref: str | None) -> Error:
    return Error(type="error", code=code, message=message, ref=ref)


def joined(
    *,
    room: str,
    epoch: str,
    seq: int,
    history: list[dict[str, Any]],
    recovered: bool,
    has_more: bool,
    presence: list[dict[str, Any]],
    ref: str | None,
) -> Joined:
    return Joined(
        type="joined",
        room=room,
        epoch=epoch,
        seq=seq,
        history=history,
        recovered=recovered,
        has_more=has_more,
        presence=presence,
        **_ref(ref),
    )


def left(room: str, ref: str | None, reason: LeaveReason | None = None) -> Left:
    extra: dict[str, Any] = {} if reason is None else {"reason": reason}
    return Left(type="left", room=room, **extra, **_ref(ref))


def ack(message: dict[str, Any], ref: str | None) -> Ack:
    return Ack(type="ack", id=message["id"], seq=message["seq"], **_ref(ref))


def message(payload: dict[str, Any]) -> Message:
    return Message(type="message", **payload)


def presence(room: str, user: dict[str, Any], event: PresenceEvent) -> Presence:
    return Presence(type="presence", room=room, user=user, event=event)


def typing(room: str, user: dict[str, Any]) -> TypingNotice:
    return TypingNotice(type="typing", room=room, user=user)


def pong(ref: str | None) -> Pong:
    return Pong(type="pong", **_ref(ref))


def refreshed(expires_at: int, ref: str | None) -> Refreshed:
    return Refreshed(type="refreshed", expires_at=expires_at, **_ref(ref))


def encode(frame: BaseModel) -> str:
    """Compact JSON of the fields a builder set: the one encoder for every server frame."""
    return frame.model_dump_json(exclude_unset=True)


def fit_history(
    messages: list[dict[str, Any]], max_bytes: int
) -> tuple[list[dict[str, Any]], bool]:
    """The newest of `messages` (oldest first) whose encoding fits in `max_bytes`, and
    whether any had to be left out. Whatever the bodies, a `joined` built from them stays
    under the transport's message cap; the client pages back through REST for the rest."""
    kept: list[dict[str, Any]] = []
    used = 0
    for payload in reversed(messages):
        # As encode() writes it, +1 for the comma between entries of the history array.
        used += len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()) + 1
        if used > max_bytes:
            return kept[::-1], True
        kept.append(payload)
    return kept[::-1], False
