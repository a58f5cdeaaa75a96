"""Request and response shapes of the accounts API."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import update_last_login
from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenObtainSerializer, TokenVerifySerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import UntypedToken

from accounts import selectors, services
from accounts.authentication import session_of
from accounts.models import User
from accounts.tokens import SessionRefreshToken
from accounts.usernames import SIMILAR_USERNAME_MESSAGE


class RegisterSerializer(serializers.Serializer):
    """Register's input. A username that is taken, or looks like one that is, is refused here:
    usernames are public in the chat anyway. A taken email is not: saying so would tell anyone
    which addresses have accounts, so services.user_register answers it like a new one."""

    username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)

    def validate_username(self, value: str) -> str:
        if selectors.user_username_taken(username=value):
            raise serializers.ValidationError(
                "A user with that username already exists.", code="unique"
            )
        if selectors.user_username_lookalike_taken(username=value):
            raise serializers.ValidationError(SIMILAR_USERNAME_MESSAGE, code="unique")
        return value


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "date_joined"]
        read_only_fields = fields


class LoginSerializer(TokenObtainSerializer):
    """SimpleJWT's username/password check; the pair it returns opens a sign-in session."""

    token_class = SessionRefreshToken
    # Set by TokenObtainSerializer.validate, which raises when no user authenticates.
    user: User

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        super().validate(attrs)  # authenticates and sets self.user, or raises
        request = self.context["request"]
        pair = services.session_start(
            user=self.user,
            ip_address=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        if jwt_settings.UPDATE_LAST_LOGIN:
            # As SimpleJWT calls it: the receiver ignores its sender.
            update_last_login(None, self.user)  # type: ignore[arg-type]
        return pair.as_dict()


class RefreshSerializer(serializers.Serializer):
    """A refresh token in, the session's next pair out (rotation with reuse detection)."""

    refresh = serializers.CharField(write_only=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            return services.session_refresh(raw_token=attrs["refresh"]).as_dict()
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc


class LogoutSerializer(serializers.Serializer):
    """A refresh token in: its session ends; with `everywhere`, every session of its user."""

    refresh = serializers.CharField(write_only=True)
    everywhere = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            services.session_end(raw_token=attrs["refresh"], everywhere=attrs["everywhere"])
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        return attrs


class PasswordChangeSerializer(serializers.Serializer):
    old_password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)
    new_password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)


class VerifySerializer(TokenVerifySerializer):
    """SimpleJWT's verify, plus the session check every use of a token makes; a blacklisted
    token is answered like any other invalid one (401; upstream answers 400 for it alone)."""

    def validate(self, attrs: dict) -> dict:
        try:
            data = super().validate(attrs)
        except serializers.ValidationError:
            raise TokenError("Token is blacklisted") from None
        session_of(UntypedToken(attrs["token"]).payload)
        return data


# --- Response shapes, for the OpenAPI schema only (the views build these bodies themselves) ---


class RegistrationSerializer(serializers.Serializer):
    """Register's answer: the same whether or not the email already had an account."""

    username = serializers.CharField(read_only=True, help_text="As stored (NFKC).")
    email = serializers.EmailField(read_only=True, help_text="As stored (domain lowercased).")


class TokenPairSerializer(serializers.Serializer):
    """An access and a refresh token of one sign-in session."""

    access = serializers.CharField(
        read_only=True, help_text="JWT for `Authorization: Bearer`; lives 5 minutes."
    )
    refresh = serializers.CharField(
        read_only=True,
        help_text="JWT for /api/auth/token/refresh/ and /api/auth/logout/; lives a day and "
        "is spent by its first refresh (a second use revokes the session).",
    )
