"""Request and response shapes of the rooms and ticket REST API."""

from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from realtime.models import Room
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
