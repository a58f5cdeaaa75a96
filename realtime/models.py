"""Rooms, who belongs to them, and what was said in them."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from realtime.protocol import SLUG_PATTERN


class Room(models.Model):
    slug = models.CharField(
        max_length=50,
        unique=True,
        validators=[RegexValidator(SLUG_PATTERN, "Lowercase letters, digits and hyphens.")],
        help_text="Lowercase letters, digits and hyphens; used on the wire and in URLs.",
    )
    title = models.CharField(max_length=120)
    is_private = models.BooleanField(
        default=False, help_text="Private rooms admit members only; public rooms anyone signed in."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rooms_created",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The seq of the room's newest message: messages are numbered 1, 2, 3... per room, with
    # no gaps and no repeats (realtime.services.message_post).
    last_seq = models.BigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room", "user"]
        constraints = [
            models.UniqueConstraint(fields=["user", "room"], name="realtime_membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.room} ({self.role})"


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    # Messages outlive their author's account; the wire shows `user: null` then.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="messages",
    )
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Its position in its room: the room's last_seq when it was stored.
    seq = models.BigIntegerField(editable=False)
    # The sender's own id for it, so a retried send stores nothing new (docs/protocol.md).
    client_id = models.CharField(  # noqa: DJ001 (NULL: no id; "" would be one, and unique)
        max_length=64, null=True, blank=True, editable=False
    )
    # Set when a moderator redacted it: the body is gone, the seq stays (a deleted row would
    # leave a hole that every resuming client would take for a lost message).
    redacted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["room", "seq"]
        constraints = [
            # Also the index of every history read: WHERE room_id = ? AND seq > ? ORDER BY seq.
            models.UniqueConstraint(fields=["room", "seq"], name="realtime_msg_room_seq"),
            models.UniqueConstraint(
                fields=["author", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="realtime_msg_author_client_id",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} in {self.room_id}"
