"""Request and response shapes of the rooms and ticket REST API."""

from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from realtime.models import Membership, Room
from realtime.protocol import SLUG_PATTERN


class RoomSerializer(serializers.ModelSerializer):
    slug = serializers.CharField(
        max_length=50,
        validators=[
            RegexValidator(SLUG_PATTERN, "Lowercase letters, digits and hyphens.", code="invalid"),
            UniqueValidator(Room.objects.all(), message="A room with that slug already exists."),
        ],
    )

    class Meta:
        model = Room
        fields = ["slug", "title", "is_private", "created_at"]
        read_only_fields = ["created_at"]


class HistoryQuerySerializer(serializers.Serializer):
    # Seqs: `before` pages back from a message, `after` forward (a client catching up).
    before = serializers.IntegerField(required=False, min_value=1)
    after = serializers.IntegerField(required=False, min_value=0)
    # One page of a scrolling client; bounded so one request cannot read a whole room.
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=50)

    def validate(self, attrs: dict) -> dict:
        if "before" in attrs and "after" in attrs:
            raise serializers.ValidationError("Give before or after, not both.")
        return attrs


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)


# --- Response shapes, for the OpenAPI schema only (the views build these bodies themselves) ---


class RoomListSerializer(serializers.Serializer):
    rooms = RoomSerializer(many=True, read_only=True)


class MessageAuthorSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)


class MessageSerializer(serializers.Serializer):
    """A message as realtime.selectors.message_payload sends it, on the socket and here."""

    room = serializers.CharField(read_only=True, help_text="The room's slug.")
    id = serializers.IntegerField(read_only=True)
    seq = serializers.IntegerField(
        read_only=True, help_text="Position in the room: 1, 2, 3... with no gaps."
    )
    user = MessageAuthorSerializer(
        read_only=True, allow_null=True, help_text="null once the author's account is deleted."
    )
    body = serializers.CharField(read_only=True, help_text="Empty when redacted.")
    created_at = serializers.DateTimeField(read_only=True)
    # Not read_only: drf-spectacular lists every read-only field as required.
    redacted = serializers.BooleanField(
        required=False, help_text="Present (true) only on a redacted message."
    )


class MessagePageSerializer(serializers.Serializer):
    messages = MessageSerializer(many=True, read_only=True, help_text="Oldest first.")
    has_more = serializers.BooleanField(
        read_only=True,
        help_text="Whether more messages lie beyond this page: older ones (newest page or "
        "`before`), newer ones (`after`).",
    )


class RoomMemberSerializer(serializers.Serializer):
    username = serializers.CharField(read_only=True)
    role = serializers.ChoiceField(choices=Membership.Role.choices, read_only=True)


class RoomMemberListSerializer(serializers.Serializer):
    members = RoomMemberSerializer(many=True, read_only=True, help_text="Owners first.")


class MembershipSerializer(serializers.Serializer):
    room = serializers.CharField(read_only=True, help_text="The room's slug.")
    username = serializers.CharField(read_only=True)
    role = serializers.ChoiceField(choices=Membership.Role.choices, read_only=True)


class TicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(
        read_only=True, help_text="Open /ws/chat/?ticket=<ticket> with it, once."
    )
    expires_in = serializers.IntegerField(read_only=True, help_text="Seconds it stays valid.")
