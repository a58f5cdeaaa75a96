"""Reads: rooms a user may see, and message history. Synchronous; consumers wrap them."""

from __future__ import annotations

from dataclasses import dataclass
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
    try:
        room = rooms.get()
    except Room.DoesNotExist:
        if session_id is not None and not _open_session(user, session_id).exists():
            raise _session_ended(user) from None
        raise RoomNotFound(slug) from None
    # django-stubs types the queryset by its first annotate(): the conditional second one,
    # which adds session_open, is invisible to it.
    if session_id is not None and not room.session_open:  # type: ignore[attr-defined]
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


def room_members(*, room: Room) -> list[dict[str, str]]:
    """The room's members as {"username", "role"}: owners first, then by username."""
    memberships = Membership.objects.filter(room=room, user__is_active=True).select_related("user")
    members = [{"username": m.user.username, "role": m.role} for m in memberships]
    return sorted(members, key=lambda m: (m["role"] != Membership.Role.OWNER, m["username"]))


def message_history(
    *, room: Room, limit: int, before: int | None = None, after: int | None = None
) -> list[Message]:
    """Up to `limit` messages, oldest first, by seq: the first ones after `after`, else the
    last ones before `before` (or the room's latest)."""
    messages = Message.objects.filter(room=room).select_related("author")
    if after is not None:
        return list(messages.filter(seq__gt=after).order_by("seq")[:limit])
    if before is not None:
        messages = messages.filter(seq__lt=before)
    return list(reversed(messages.order_by("-seq")[:limit]))


def message_payload(message: Message, *, room_slug: str) -> dict[str, Any]:
    """A message as it travels on the wire and in the REST API."""
    author = message.author
    payload = {
        "room": room_slug,
        "id": message.pk,
        "seq": message.seq,
        "user": None if author is None else {"id": author.pk, "username": author.username},
        "body": message.body,
        "created_at": message.created_at.isoformat().replace("+00:00", "Z"),
    }
    if message.redacted_at is not None:
        payload["redacted"] = True
    return payload


@dataclass(frozen=True, slots=True)
class CatchUp:
    """What a join tells its socket: the room's latest seq and the messages to show."""

    seq: int
    # Wire payloads, oldest first.
    messages: list[dict[str, Any]]
    # True when `messages` holds every message after the `since` asked for.
    complete: bool


def room_catch_up(*, room: Room, since: int | None, limit: int) -> CatchUp:
    """The messages after `since` when there are at most `limit` of them (complete), else
    the room's newest `limit` (not complete; also without `since`).

    Every message up to the returned seq was committed when it was read: seqs are taken in
    commit order (services.message_post), so none can still appear below it.
    """
    latest = room_latest_seq(room_id=room.pk)
    page: list[Message] | None = None
    if since is not None and 0 <= since <= latest:
        page = message_history(room=room, limit=limit + 1, after=since)
        if len(page) > limit:
            page = None
    complete = page is not None
    if page is None:
        page = message_history(room=room, limit=limit)
    # A message stored between the two reads is in `page` and raises the latest seq seen.
    latest = max([latest, *(message.seq for message in page)])
    return CatchUp(
        latest, [message_payload(m, room_slug=room.slug) for m in page], complete=complete
    )


def message_range(*, room_id: int, after: int, upto: int, slug: str) -> list[dict[str, Any]]:
    """The room's messages with after < seq <= upto, oldest first, as wire payloads."""
    messages = (
        Message.objects.filter(room_id=room_id, seq__gt=after, seq__lte=upto)
        .select_related("author")
        .order_by("seq")
    )
    return [message_payload(m, room_slug=slug) for m in messages]


def room_latest_seq(*, room_id: int) -> int:
    """The seq of the room's newest message (0 when empty or gone)."""
    seqs = Room.objects.filter(pk=room_id).order_by().values_list("last_seq", flat=True)
    return next(iter(seqs), 0)
