"""Channel-layer groups and the events sent to them.

One group per room (`room.<id>`) carries chat messages; one group per user (`user.<id>`)
carries control events for all of that user's sockets, on every daphne process. Groups are
named by the room's id, never its slug: a socket subscribed to a room keeps receiving that
room and no other, whatever later happens to slugs (deleted, reused by a new room).

Chat messages, presence and typing notices are encoded to their final JSON text once,
here, so each of a room's sockets only forwards a ready string.
"""

from __future__ import annotations

import time
from typing import Any

from channels.layers import BaseChannelLayer, get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from realtime import frames

# Event types, as the consumer's handler names see them ("chat.message" -> chat_message).
CHAT_MESSAGE = "chat.message"
PRESENCE = "presence.event"
TYPING = "typing.event"
ROOM_CLOSED = "room.closed"
MEMBERSHIP_REVOKED = "membership.revoked"
SESSION_END = "session.end"


def _channel_layer() -> BaseChannelLayer:
    """The default channel layer, which every settings module configures."""
    layer = get_channel_layer()
    if layer is None:
        raise ImproperlyConfigured("Set CHANNEL_LAYERS: realtime needs a default channel layer.")
    return layer


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


async def broadcast_message(room_id: int, payload: dict[str, Any]) -> None:
    """Send a stored message to every socket in its room, pre-encoded, with its seq (the
    sockets deliver each room's messages in seq order, exactly once)."""
    await _channel_layer().group_send(
        room_group(room_id),
        {
            "type": CHAT_MESSAGE,
            "room_id": room_id,
            "seq": payload["seq"],
            "text": frames.encode(frames.message(payload)),
            # For the fan-out latency metric (realtime.metrics): wall clock, as the
            # receiving process may be another one.
            "published": time.time(),
        },
    )


async def announce_presence(
    room_id: int, slug: str, user: dict[str, Any], event: frames.PresenceEvent
) -> None:
    """Tell the room's other sockets that a user's presence began or ended."""
    await _channel_layer().group_send(
        room_group(room_id),
        {
            "type": PRESENCE,
            "room_id": room_id,
            "user_id": user["id"],
            "text": frames.encode(frames.presence(slug, user, event)),
        },
    )


async def announce_typing(room_id: int, slug: str, user: dict[str, Any]) -> None:
    """Tell the room's other sockets that a user is typing; never stored."""
    await _channel_layer().group_send(
        room_group(room_id),
        {
            "type": TYPING,
            "room_id": room_id,
            "user_id": user["id"],
            "text": frames.encode(frames.typing(slug, user)),
        },
    )


async def announce_room_closed(room_id: int) -> None:
    """Tell every socket in the room that the room is gone."""
    await _channel_layer().group_send(
        room_group(room_id), {"type": ROOM_CLOSED, "room_id": room_id}
    )


async def revoke_membership(user_id: int, room_id: int) -> None:
    """Tell the user's sockets they may no longer read the room."""
    await _channel_layer().group_send(
        user_group(user_id), {"type": MEMBERSHIP_REVOKED, "room_id": room_id}
    )


async def end_sessions(
    user_id: int, *, reason: str, session_ids: list[str] | None, keep: str | None
) -> None:
    """Close the user's sockets of the ended sessions (all but `keep` when None)."""
    await _channel_layer().group_send(
        user_group(user_id),
        {"type": SESSION_END, "reason": reason, "sessions": session_ids, "keep": keep},
    )
