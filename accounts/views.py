"""The accounts REST API under /api/auth/ (docs/security.md lists what each endpoint defends)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.fields import get_error_detail
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import (
    TokenBlacklistView,
    TokenObtainPairView,
    TokenRefreshView,
    TokenVerifyView,
)

from accounts import services
from accounts.authentication import AuthenticatedRequest
from accounts.models import User
from accounts.serializers import (
    LoginSerializer,
    LogoutSerializer,
    PasswordChangeSerializer,
    RefreshSerializer,
    RegisterSerializer,
    RegistrationSerializer,
    TokenPairSerializer,
    UserSerializer,
    VerifySerializer,
)
from accounts.throttles import LoginRateThrottle, RegisterRateThrottle
from accounts.tokens import SESSION_CLAIM
from config.api import client_address
from config.openapi import error_response

_TOKEN_NOT_VALID = error_response(
    "`token_not_valid`: the token is expired, tampered, of the wrong type, or its session has "
    "ended."
)


@extend_schema(
    summary="Register an account",
    request=RegisterSerializer,
    responses={201: RegistrationSerializer},
)
class RegisterView(APIView):
    """POST username, email, password: creates an active account (no tokens; log in next).

    201 {username, email} whether or not the email already had an account (then its owner is
    emailed instead and no account is made), so the answer tells nobody which addresses have
    accounts. Nothing in it may differ between the two: no id, no timestamps.
    """

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (RegisterRateThrottle,)

    def post(self, request: Request) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            registration = services.user_register(
                **serializer.validated_data, client_addr=client_address(request)
            )
        except DjangoValidationError as exc:  # password rules, and races lost, in the service
            raise ValidationError(get_error_detail(exc)) from None
        return Response(
            {"username": registration.username, "email": registration.email},
            status=status.HTTP_201_CREATED,
        )


@extend_schema_view(
    post=extend_schema(
        summary="Sign in: open a session and get its token pair",
        request=LoginSerializer,
        responses={
            200: TokenPairSerializer,
            401: error_response(
                "`invalid_credentials`: no active account with this username and password."
            ),
        },
    )
)
class LoginView(TokenObtainPairView):
    """POST username, password: opens a sign-in session; returns its access and refresh token."""

    serializer_class = LoginSerializer
    throttle_classes = (LoginRateThrottle,)


@extend_schema_view(
    post=extend_schema(
        summary="Get the session's next token pair (rotation)",
        request=RefreshSerializer,
        responses={
            200: TokenPairSerializer,
            401: error_response(
                "`token_not_valid`: the refresh token is invalid or spent; sending a spent one "
                "revokes its session (its sockets close with 4103)."
            ),
        },
    )
)
class RefreshView(TokenRefreshView):
    """POST refresh: returns the session's next pair; the token sent is spent (rotation), and
    sending a spent one again revokes the session."""

    serializer_class = RefreshSerializer


@extend_schema_view(
    post=extend_schema(
        summary="Check a token and its session",
        request=VerifySerializer,
        responses={
            200: OpenApiResponse(
                response={"type": "object", "additionalProperties": False},
                description="The token is valid and its session open: `{}`.",
            ),
            401: _TOKEN_NOT_VALID,
        },
    )
)
class VerifyView(TokenVerifyView):
    """POST token: 200 when the token is valid and its session open, 401 otherwise."""

    serializer_class = VerifySerializer


@extend_schema_view(
    post=extend_schema(
        summary="Sign out: end the token's session, or every session with `everywhere`",
        request=LogoutSerializer,
        responses={
            204: OpenApiResponse(
                description="Signed out (also when the session had ended already)."
            ),
            401: _TOKEN_NOT_VALID,
        },
    )
)
class LogoutView(TokenBlacklistView):
    """POST refresh [, everywhere]: ends the token's session (or every session of its user):
    their tokens stop working and their sockets close."""

    serializer_class = LogoutSerializer

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        super().post(request, *args, **kwargs)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    summary="Change the password; every other session ends",
    request=PasswordChangeSerializer,
    responses={
        200: TokenPairSerializer,
        400: error_response(
            "`validation_failed`: `old_password` is wrong or `new_password` is refused "
            "(`fields`); or `malformed_json`."
        ),
    },
)
class PasswordChangeView(APIView):
    """POST old_password, new_password: every other session ends; returns this session's
    next pair (its current tokens carry the old password's fingerprint)."""

    permission_classes = (IsAuthenticated,)
    # A stolen access token must not buy unlimited guesses at the current password.
    throttle_classes = (LoginRateThrottle,)

    def post(self, request: AuthenticatedRequest) -> Response:
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            pair = services.user_change_password(
                user=request.user,
                session_id=request.auth[SESSION_CLAIM],
                **serializer.validated_data,
            )
        except DjangoValidationError as exc:
            raise ValidationError(get_error_detail(exc)) from None
        return Response(pair.as_dict())


@extend_schema(summary="The signed-in user")
class MeView(generics.RetrieveAPIView):
    """GET: the signed-in user."""

    permission_classes = (IsAuthenticated,)
    serializer_class = UserSerializer
    request: AuthenticatedRequest

    def get_object(self) -> User:
        return self.request.user
