"""Request and response shapes of the accounts API."""

from __future__ import annotations

from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import AuthenticationFailed, TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer, TokenVerifySerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from accounts import selectors
from accounts.models import User


class RegisterSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)

    def validate_username(self, value: str) -> str:
        if selectors.user_username_taken(username=value):
            raise serializers.ValidationError(
                "A user with that username already exists.", code="unique"
            )
        return value

    def validate_email(self, value: str) -> str:
        if selectors.user_email_taken(email=value):
            raise serializers.ValidationError(
                "A user with that email already exists.", code="unique"
            )
        return value


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "date_joined"]
        read_only_fields = fields


class RefreshSerializer(TokenRefreshSerializer):
    """SimpleJWT's refresh, plus the user checks its access-token authentication makes.

    Upstream's refresh makes neither: a deleted user's token would be a server error, and a
    token minted before a password change would go on minting access tokens.
    """

    def validate(self, attrs: dict) -> dict:
        refresh = self.token_class(attrs["refresh"])
        user_id = refresh.payload.get(jwt_settings.USER_ID_CLAIM)
        user = User.objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if not user.is_active:
            # Upstream answers "no active account", a login error; this is a token error.
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        if jwt_settings.CHECK_REVOKE_TOKEN and refresh.get(
            jwt_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(
                "The user's password has been changed.", code="password_changed"
            )
        return super().validate(attrs)


class VerifySerializer(TokenVerifySerializer):
    """SimpleJWT's verify, answering a blacklisted token like any other invalid one (401).

    Upstream raises a validation error (400) for a blacklisted token only.
    """

    def validate(self, attrs: dict) -> dict:
        try:
            return super().validate(attrs)
        except serializers.ValidationError:
            raise TokenError("Token is blacklisted") from None
