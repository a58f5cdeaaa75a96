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
    RefreshSerializer,
    RegisterSerializer,
    UserSerializer,
    VerifySerializer,
)
from accounts.throttles import LoginRateThrottle, RegisterRateThrottle


class RegisterView(APIView):
    """POST username, email, password: creates an active account (no tokens; log in next)."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (RegisterRateThrottle,)

    def post(self, request: Request) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = services.user_register(**serializer.validated_data)
        except DjangoValidationError as exc:  # the password rules live in the service
            raise ValidationError(get_error_detail(exc)) from None
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(TokenObtainPairView):
    """POST username, password: returns an access and a refresh token."""

    throttle_classes = (LoginRateThrottle,)


class RefreshView(TokenRefreshView):
    """POST refresh: returns a new pair; the refresh token sent is blacklisted (rotation)."""

    serializer_class = RefreshSerializer


class VerifyView(TokenVerifyView):
    """POST token: 200 when the token is valid, 401 otherwise."""

    serializer_class = VerifySerializer


class LogoutView(TokenBlacklistView):
    """POST refresh: blacklists it, so it can never mint another access token."""

    def post(self, request: Request, *args, **kwargs) -> Response:
        super().post(request, *args, **kwargs)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(generics.RetrieveAPIView):
    """GET: the signed-in user."""

    permission_classes = (IsAuthenticated,)
    serializer_class = UserSerializer

    def get_object(self) -> User:
        return self.request.user
