"""Request and response shapes of the accounts API."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.fields import get_error_detail

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

    def validate(self, attrs: dict) -> dict:
        # Django's validators, including similarity to the username and email.
        candidate = User(username=attrs["username"], email=attrs["email"])
        try:
            validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": get_error_detail(exc)}) from None
        return attrs


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "date_joined"]
        read_only_fields = fields
