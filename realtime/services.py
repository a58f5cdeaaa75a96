"""Writes: rooms, memberships, messages. Synchronous; consumers and views call them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import User
from realtime.exceptions import ClientIdReused, RoomQuotaExceeded
from realtime.models import Membership, Message, Room
from realtime.selectors import message_payload, room_get_readable
from realtime.statements import post_in_one_statement


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
    # False when a retry of an earlier send (same client_id) found it already stored.
    created: bool


def message_post(
    *, author: User, session_id: str, slug: str, body: str, client_id: str | None = None
) -> PostedMessage:
    """Authorize, number and store a message; raise RoomNotFound, RoomForbidden,
    SessionEnded, or ClientIdReused (the client_id names another message).

    Authorization happens here, on every message, so a member removed from a private room,
    or a socket whose session ended, cannot post even if the event that should have told
    the socket was lost.

    Numbering: incrementing the room's last_seq locks the room's row until the commit, so
    the senders of one room are queued (on PostgreSQL, by the row lock; on SQLite, every
    writer is) and each message takes the next number. A failed insert rolls the increment
    back with it: no gaps, no repeats, and a message is committed before any higher one.

    Idempotency: a send with a client_id the author used before returns the stored message
    (created=False) and stores nothing; two such sends racing on two processes meet at the
    unique (author, client_id) constraint, and the loser returns the winner's message.

    On PostgreSQL all of it is one statement (realtime.statements) unless that stores nothing;
    the ORM path below then finds out why.
    """
    now = timezone.now()
    try:
        stored = post_in_one_statement(
            user_id=author.pk,
            session_id=session_id,
            slug=slug,
            body=body,
            client_id=client_id,
            now=now,
        )
    except IntegrityError:
        stored = None  # a concurrent retry won the client_id: the path below returns its message
    if stored is not None:
        message = Message(
            pk=stored.message_id,
            room_id=stored.room_id,
            author=author,
            body=body,
            seq=stored.seq,
            client_id=client_id,
            created_at=now,
        )
        payload = message_payload(message, room_slug=slug)
        return PostedMessage(stored.room_id, payload, created=True)
    room = room_get_readable(user=author, slug=slug, session_id=session_id)
    if client_id is not None:
        earlier = _earlier_send(author=author, client_id=client_id, room=room, body=body)
        if earlier is not None:
            return earlier
    try:
        message = message_store(room=room, author=author, body=body, client_id=client_id)
    except IntegrityError:
        earlier = (
            _earlier_send(author=author, client_id=client_id, room=room, body=body)
            if client_id
            else None
        )
        if not earlier:
            raise
        return earlier
    return PostedMessage(room.pk, message_payload(message, room_slug=room.slug), created=True)


def message_store(
    *, room: Room, author: User | None, body: str, client_id: str | None = None
) -> Message:
    """Store a message as the room's next seq, authorizing nothing (message_post does)."""
    with transaction.atomic():
        Room.objects.filter(pk=room.pk).update(last_seq=F("last_seq") + 1)
        seq = Room.objects.filter(pk=room.pk).values_list("last_seq", flat=True).get()
        return Message.objects.create(
            room=room, author=author, body=body, seq=seq, client_id=client_id
        )


def _earlier_send(*, author: User, client_id: str, room: Room, body: str) -> PostedMessage | None:
    try:
        message = Message.objects.get(author=author, client_id=client_id)
    except Message.DoesNotExist:
        return None
    if message.room_id != room.pk or message.body != body:
        raise ClientIdReused(client_id)
    message.author = author
    return PostedMessage(room.pk, message_payload(message, room_slug=room.slug), created=False)


def message_redact(*, messages: QuerySet[Message]) -> int:
    """Blank the messages' bodies for good, keeping their place (seq) in their rooms."""
    return messages.filter(redacted_at__isnull=True).update(body="", redacted_at=timezone.now())
