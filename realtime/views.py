"""Rooms, history and WebSocket tickets over REST (/api/rooms/, /api/realtime/ticket/)."""

from __future__ import annotations

from django.db import IntegrityError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import (
    ErrorDetail,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from accounts.authentication import AuthenticatedRequest
from accounts.models import User
from accounts.throttles import ClientAddressRateThrottle
from config.openapi import error_response
from realtime import selectors, services, tickets
from realtime.conf import realtime_settings
from realtime.exceptions import RoomForbidden, RoomNotFound, RoomQuotaExceeded
from realtime.models import Membership, Room
from realtime.serializers import (
    HistoryQuerySerializer,
    MemberSerializer,
    MembershipSerializer,
    MessagePageSerializer,
    RoomListSerializer,
    RoomMemberListSerializer,
    RoomSerializer,
    TicketSerializer,
)

_ROOM_NOT_FOUND = error_response("`not_found`: no such room.")
_MEMBERS_ONLY = error_response(
    "`permission_denied`: the room is private and the caller is not a member."
)
_OWNER_ONLY = error_response(
    "`permission_denied`: the room is private and the caller is not a member, or the caller "
    "is not the room's owner."
)


class TicketRateThrottle(ClientAddressRateThrottle):
    scope = "ticket"


def _readable_room(user: User, slug: str) -> Room:
    try:
        return selectors.room_get_readable(user=user, slug=slug)
    except RoomNotFound:
        raise NotFound("No such room.") from None
    except RoomForbidden:
        raise PermissionDenied("This room is for its members only.") from None


def _owned_room(user: User, slug: str) -> Room:
    room = _readable_room(user, slug)
    if not Membership.objects.filter(room=room, user=user, role=Membership.Role.OWNER).exists():
        raise PermissionDenied("Only the room's owner may manage its members.")
    return room


class RoomCreateRateThrottle(UserRateThrottle):
    """Rooms created per user (THROTTLE_ROOM_CREATE); the rate is read per request, so
    settings overrides apply (UserRateThrottle reads it once, at import)."""

    scope = "room_create"

    def get_rate(self) -> str | None:
        # djangorestframework-stubs types the rates as numbers; they are "10/min" strings.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # type: ignore[return-value]


class RoomListView(APIView):
    """GET: rooms the user may join. POST slug, title, is_private: create one the user owns."""

    def get_throttles(self) -> list:
        # Creating a room spends the budget; listing rooms does not.
        if self.request.method == "POST":
            return [RoomCreateRateThrottle()]
        return super().get_throttles()

    @extend_schema(
        summary="Rooms the caller may join: public ones and their private ones",
        responses={200: RoomListSerializer},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        rooms = selectors.room_list_visible(user=request.user)
        return Response({"rooms": RoomSerializer(rooms, many=True).data})

    @extend_schema(
        summary="Create a room the caller owns",
        request=RoomSerializer,
        responses={
            201: RoomSerializer,
            403: error_response(
                "`quota_exceeded`: the caller already created as many rooms as one user may "
                "(ROOMS_MAX_OWNED_PER_USER, 50 by default)."
            ),
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        serializer = RoomSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            room = services.room_create(creator=request.user, **serializer.validated_data)
        except RoomQuotaExceeded as exc:
            raise PermissionDenied(str(exc), code="quota_exceeded") from None
        except IntegrityError:  # lost a race for the slug
            raise ValidationError(
                {"slug": [ErrorDetail("A room with that slug already exists.", code="unique")]}
            ) from None
        return Response(RoomSerializer(room).data, status=status.HTTP_201_CREATED)


class RoomMessagesView(APIView):
    """GET ?before=<seq> or ?after=<seq>, &limit=<n>: a page of history, oldest first, and
    whether more exists beyond it (older with `before` or none, newer with `after`)."""

    @extend_schema(
        summary="A page of the room's history",
        parameters=[HistoryQuerySerializer],
        responses={
            200: MessagePageSerializer,
            400: error_response(
                "`validation_failed`: a query parameter is out of range, or both `before` and "
                "`after` are given (`fields`)."
            ),
            403: _MEMBERS_ONLY,
            404: _ROOM_NOT_FOUND,
        },
    )
    def get(self, request: AuthenticatedRequest, slug: str) -> Response:
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        room = _readable_room(request.user, slug)
        limit = query.validated_data["limit"]
        after = query.validated_data.get("after")
        page = selectors.message_history(
            room=room, limit=limit + 1, before=query.validated_data.get("before"), after=after
        )
        has_more = len(page) > limit
        if has_more:
            # One more than asked was read to know: drop it from the far end.
            page = page[:-1] if after is not None else page[1:]
        return Response(
            {
                "messages": [selectors.message_payload(m, room_slug=room.slug) for m in page],
                "has_more": has_more,
            }
        )


class RoomMembersView(APIView):
    """GET: the room's members (anyone who may read the room). POST username: the owner
    adds a member."""

    @extend_schema(
        summary="The room's members",
        responses={200: RoomMemberListSerializer, 403: _MEMBERS_ONLY, 404: _ROOM_NOT_FOUND},
    )
    def get(self, request: AuthenticatedRequest, slug: str) -> Response:
        room = _readable_room(request.user, slug)
        return Response({"members": selectors.room_members(room=room)})

    @extend_schema(
        summary="Add a member (the room's owner only)",
        request=MemberSerializer,
        responses={
            201: MembershipSerializer,
            403: _OWNER_ONLY,
            404: error_response("`not_found`: no such room, or no active user by that name."),
        },
    )
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        room = _owned_room(request.user, slug)
        serializer = MemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = User.objects.filter(
            username__iexact=serializer.validated_data["username"], is_active=True
        ).first()
        if user is None:
            raise NotFound("No such user.")
        membership = services.membership_add(room=room, user=user)
        return Response(
            {"room": room.slug, "username": user.username, "role": membership.role},
            status=status.HTTP_201_CREATED,
        )


class RoomMemberView(APIView):
    """DELETE: the owner removes a member (or a member leaves); their sockets leave the room."""

    @extend_schema(
        summary="Remove a member (the owner), or leave (the member)",
        responses={
            204: OpenApiResponse(
                description="Removed; the member's sockets leave the room if it is private."
            ),
            403: _OWNER_ONLY,
            404: error_response("`not_found`: no such room, or no such member."),
        },
    )
    def delete(self, request: AuthenticatedRequest, slug: str, username: str) -> Response:
        is_self = username.lower() == request.user.username.lower()
        room = _readable_room(request.user, slug) if is_self else _owned_room(request.user, slug)
        user = User.objects.filter(username__iexact=username).first()
        if user is None or not services.membership_remove(room=room, user=user):
            raise NotFound("No such member.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class TicketView(APIView):
    """POST (with an access token): a single-use WebSocket ticket valid for a few seconds."""

    throttle_classes = (TicketRateThrottle,)

    @extend_schema(
        summary="A single-use WebSocket ticket",
        description="Open `/ws/chat/?ticket=<ticket>` within `expires_in` seconds; the ticket "
        "stands for the access token it was bought with (same user, session and expiry).",
        request=None,
        responses={201: TicketSerializer},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        # A cache (Redis) failure becomes 503 `unavailable` in config.api.exception_handler.
        ticket = tickets.ticket_issue(access_token=request.auth)
        return Response(
            {"ticket": ticket, "expires_in": realtime_settings().TICKET_TTL_SECONDS},
            status=status.HTTP_201_CREATED,
        )
