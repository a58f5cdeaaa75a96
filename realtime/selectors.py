"""Reads: rooms a user may see, and message history. Synchronous; consumers wrap them."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import LoginSession, User
from realtime.exceptions import RoomForbidden, RoomNotFound, SessionEnded
from realtime.models import Membership, Message, Room


def room_list_visible(*, user: User) -> QuerySet[Room]:
    """Public rooms and the private rooms the user belongs to, by slug."""
    is_member = Membership.objects.filter(room=OuterRef("pk"), user=user)
    return Room.objects.filter(Q(is_private=False) | Q(Exists(is_member))).order_by("slug")


def room_get_readable(*, user: User, slug: str, session_id: str | None = None) -> Room:
    """The room if the user may read and post in it; raise RoomNotFound or RoomForbidden.

    Private rooms answer RoomForbidden rather than RoomNotFound: slugs are not secrets here,
    and a member-to-be needs to know the room exists to ask for an invitation.

    With `session_id` (a socket's), the same query also checks that the sign-in session is
    open and its user active, so a socket whose revocation event was lost is still refused
    at its next join or send: raise SessionEnded.
    """
    rooms = Room.objects.filter(slug=slug).annotate(
        is_member=Exists(Membership.objects.filter(room=OuterRef("pk"), user=user))
    )
    if session_id is not None:
        rooms = rooms.annotate(session_open=Exists(_open_session(user, session_id)))
    room = rooms.first()
    if room is None:
        if session_id is not None and not _open_session(user, session_id).exists():
            raise _session_ended(user)
        raise RoomNotFound(slug)
    if session_id is not None and not room.session_open:
        raise _session_ended(user)
    if room.is_private and not room.is_member:
        raise RoomForbidden(slug)
    return room


def _open_session(user: User, session_id: str) -> QuerySet[LoginSession]:
    return LoginSession.objects.filter(
        pk=session_id, user=user, revoked_at__isnull=True, user__is_active=True
    )


def _session_ended(user: User) -> SessionEnded:
    active = User.objects.filter(pk=user.pk, is_active=True).exists()
    return SessionEnded(account_gone=not active)


def message_history(*, room: Room, limit: int, before: int | None = None) -> list[Message]:
    """Up to `limit` messages older than `before` (or the latest), oldest first."""
    messages = Message.objects.filter(room=room).select_related("author").order_by("-id")
    if before is not None:
        messages = messages.filter(id__lt=before)
    return list(reversed(messages[:limit]))


def message_payload(message: Message, *, room_slug: str) -> dict[str, Any]:
    """A message as it travels on the wire and in the REST API."""
    author = message.author
    return {
        "room": room_slug,
        "id": message.pk,
        "user": None if author is None else {"id": author.pk, "username": author.username},
        "body": message.body,
        "created_at": message.created_at.isoformat().replace("+00:00", "Z"),
    }


def room_history_payloads(*, room: Room, limit: int) -> list[dict[str, Any]]:
    """The room's latest `limit` messages as wire payloads, oldest first."""
    return [
        message_payload(m, room_slug=room.slug) for m in message_history(room=room, limit=limit)
    ]
