"""Writes: rooms, memberships, messages. Synchronous; consumers and views call them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from realtime.exceptions import RoomQuotaExceeded
from realtime.models import Membership, Message, Room
from realtime.selectors import message_payload, room_get_readable


def room_create(*, creator: User, slug: str, title: str, is_private: bool = False) -> Room:
    """Create a room with its creator as owner; raise ValidationError on a bad or taken slug,
    RoomQuotaExceeded when the creator already has ROOMS_MAX_OWNED_PER_USER rooms.

    Every caller is held to the quota; the Django admin saves rooms without this service.
    """
    room = Room(slug=slug, title=title, is_private=is_private, created_by=creator)
    room.full_clean()
    limit = settings.ROOMS_MAX_OWNED_PER_USER
    with transaction.atomic():
        # Count, then insert, one creation at a time per user. On PostgreSQL (READ COMMITTED)
        # a bare count lets N concurrent requests of one user all count below the cap and all
        # insert: up to N-1 rooms over it (12 at once from none, cap 3: 7 rooms). Locking the
        # creator's row first queues them, so each counts what the previous one committed:
        # no overshoot (the same 12: 3 rooms, 9 quota_exceeded). NO KEY: the foreign-key
        # checks of that user's other writes (messages) do not wait for it. On SQLite the
        # lock is a no-op, but transactions there are IMMEDIATE: writers already queue.
        list(User.objects.select_for_update(no_key=True).filter(pk=creator.pk).values("pk"))
        # Rooms created, not owner memberships: an owner can leave their own room, and must
        # not get a fresh allowance by doing so.
        if Room.objects.filter(created_by=creator).count() >= limit:
            raise RoomQuotaExceeded(limit)
        room.save()
        Membership.objects.create(room=room, user=creator, role=Membership.Role.OWNER)
    return room


def membership_add(*, room: Room, user: User, role: str = Membership.Role.MEMBER) -> Membership:
    """Make the user a member (idempotent: an existing membership is returned unchanged)."""
    membership, _ = Membership.objects.get_or_create(room=room, user=user, defaults={"role": role})
    return membership


def membership_remove(*, room: Room, user: User) -> bool:
    """Remove the membership; the user's sockets leave the room if it is private."""
    deleted, _ = Membership.objects.filter(room=room, user=user).delete()
    return deleted > 0


@dataclass(frozen=True, slots=True)
class PostedMessage:
    room_id: int
    # The message as it travels on the wire (selectors.message_payload).
    payload: dict[str, Any]


def message_post(*, author: User, session_id: str, slug: str, body: str) -> PostedMessage:
    """Authorize, store and return the message payload; raise RoomNotFound, RoomForbidden
    or SessionEnded.

    Authorization happens here, on every message, so a member removed from a private room,
    or a socket whose session ended, cannot post even if the event that should have told
    the socket was lost.
    """
    room = room_get_readable(user=author, slug=slug, session_id=session_id)
    message = Message.objects.create(room=room, author=author, body=body)
    return PostedMessage(room.pk, message_payload(message, room_slug=room.slug))
