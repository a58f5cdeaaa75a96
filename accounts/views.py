"""The accounts REST API under /api/auth/ (docs/security.md lists what each endpoint defends)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
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
from accounts.models import User
from accounts.serializers import (
    LoginSerializer,
    LogoutSerializer,
    PasswordChangeSerializer,
    RefreshSerializer,
    RegisterSerializer,
    UserSerializer,
    VerifySerializer,
)
from accounts.throttles import LoginRateThrottle, RegisterRateThrottle
from accounts.tokens import SESSION_CLAIM
from config.api import client_address


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


class LoginView(TokenObtainPairView):
    """POST username, password: opens a sign-in session; returns its access and refresh token."""

    serializer_class = LoginSerializer
    throttle_classes = (LoginRateThrottle,)


class RefreshView(TokenRefreshView):
    """POST refresh: returns the session's next pair; the token sent is spent (rotation), and
    sending a spent one again revokes the session."""

    serializer_class = RefreshSerializer


class VerifyView(TokenVerifyView):
    """POST token: 200 when the token is valid and its session open, 401 otherwise."""

    serializer_class = VerifySerializer


class LogoutView(TokenBlacklistView):
    """POST refresh [, everywhere]: ends the token's session (or every session of its user):
    their tokens stop working and their sockets close."""

    serializer_class = LogoutSerializer

    def post(self, request: Request, *args, **kwargs) -> Response:
        super().post(request, *args, **kwargs)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    """POST old_password, new_password: every other session ends; returns this session's
    next pair (its current tokens carry the old password's fingerprint)."""

    permission_classes = (IsAuthenticated,)
    # A stolen access token must not buy unlimited guesses at the current password.
    throttle_classes = (LoginRateThrottle,)

    def post(self, request: Request) -> Response:
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


class MeView(generics.RetrieveAPIView):
    """GET: the signed-in user."""

    permission_classes = (IsAuthenticated,)
    serializer_class = UserSerializer

    def get_object(self) -> User:
        return self.request.user
