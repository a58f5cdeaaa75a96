"""Channel-layer groups and the events sent to them.

One group per room (`room.<slug>`) carries chat messages; one group per user (`user.<id>`)
carries control events for all of that user's sockets, on every daphne process. A chat
message is encoded to its final JSON text once, here, so each of a room's sockets only
forwards a ready string (docs/protocol.md, "Fan-out").
"""

from __future__ import annotations

from typing import Any

from channels.layers import get_channel_layer

from realtime import protocol

# Event types, as the consumer's handler names see them ("chat.message" -> chat_message).
CHAT_MESSAGE = "chat.message"
ROOM_CLOSED = "room.closed"
MEMBERSHIP_REVOKED = "membership.revoked"
SESSION_END = "session.end"


def room_group(slug: str) -> str:
    return f"room.{slug}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


async def broadcast_message(payload: dict[str, Any]) -> None:
    """Send a stored message to every socket in its room, pre-encoded."""
    await get_channel_layer().group_send(
        room_group(payload["room"]),
        {
            "type": CHAT_MESSAGE,
            "room": payload["room"],
            "id": payload["id"],
            "text": protocol.encode(protocol.message_frame(payload)),
        },
    )


async def announce_room_closed(slug: str) -> None:
    """Tell every socket in the room that the room is gone."""
    await get_channel_layer().group_send(room_group(slug), {"type": ROOM_CLOSED, "room": slug})


async def revoke_membership(user_id: int, slug: str) -> None:
    """Tell the user's sockets they may no longer read the room."""
    await get_channel_layer().group_send(
        user_group(user_id), {"type": MEMBERSHIP_REVOKED, "room": slug}
    )


async def end_sessions(user_id: int, reason: str) -> None:
    """Close every socket of the user (account deactivated)."""
    await get_channel_layer().group_send(
        user_group(user_id), {"type": SESSION_END, "reason": reason}
    )
