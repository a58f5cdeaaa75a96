"""Writes: rooms, memberships, messages. Synchronous; consumers and views call them."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import User
from realtime.models import Membership, Message, Room
from realtime.selectors import message_payload, room_get_readable


def room_create(*, creator: User, slug: str, title: str, is_private: bool) -> Room:
    """Create a room with its creator as owner; raise ValidationError on a bad or taken slug."""
    room = Room(slug=slug, title=title, is_private=is_private, created_by=creator)
    room.full_clean()
    with transaction.atomic():
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


def message_post(*, author: User, slug: str, body: str) -> dict[str, Any]:
    """Authorize, store and return the message payload; raise RoomNotFound or RoomForbidden.

    Authorization happens here, on every message, so a member removed from a private room
    cannot post through a socket that joined before the removal.
    """
    room = room_get_readable(user=author, slug=slug)
    message = Message.objects.create(room=room, author=author, body=body)
    return message_payload(message, room_slug=room.slug)
