"""The project's user (a required email, unique ignoring case) and its sign-in sessions."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

from accounts.usernames import SIMILAR_USERNAME_MESSAGE, lookalike_skeletons, username_skeleton


class AccountManager(UserManager["User"]):
    def _create_user_object(
        self, username: str, email: str | None, password: str | None, **extra_fields: Any
    ) -> User:
        """Refuse a username taken, ignoring case, or looking like a taken one, as forms do:
        `createsuperuser` then reports it as an error instead of an IntegrityError."""
        user: User = super()._create_user_object(  # type: ignore[misc]  # not in django-stubs
            username, email, password, **extra_fields
        )
        user._refuse_taken_username()
        return user


class User(AbstractUser):
    # Required and validated; uniqueness ignoring case is enforced by the constraint below,
    # so "Alice@example.com" cannot sign up beside "alice@example.com".
    email = models.EmailField("email address", max_length=254)
    # The username's look-alike key (accounts.usernames), set on every save. Unique: two
    # usernames that look alike ("bob", and "bob" with a Cyrillic o) never both get stored,
    # even when two sign-ups race past clean(); clean() refuses them first, as a field error.
    username_skeleton = models.CharField(
        "username skeleton",
        max_length=64,
        unique=True,
        editable=False,
        error_messages={"unique": SIMILAR_USERNAME_MESSAGE},
    )

    objects: ClassVar[AccountManager] = AccountManager()

    REQUIRED_FIELDS = ["email"]

    # (is_active, password) as stored, kept by accounts.receivers from pre_save to post_save.
    _saved_credentials: tuple[bool, str] | None
    # Django's: the raw password set_password() was given until the save, else None.
    _password: str | None

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                Lower("username"),
                name="accounts_user_username_ci_unique",
                violation_error_message="A user with that username already exists.",
            ),
            models.UniqueConstraint(
                Lower("email"),
                name="accounts_user_email_ci_unique",
                violation_error_message="A user with that email already exists.",
            ),
        ]

    def clean(self) -> None:
        super().clean()
        self.email = self.email.strip()
        if self.username:  # None when a form's own username check already failed
            self.username_skeleton = username_skeleton(self.username)
            self._refuse_taken_username()

    def _refuse_taken_username(self) -> None:
        """A field error (code `unique`) when another user has this username ignoring case,
        or one that looks like it. The admin's forms show it; the API's serializer asks first."""
        others = type(self)._default_manager.exclude(pk=self.pk)
        if others.filter(username__iexact=self.username).exists():
            message = "A user with that username already exists."
        elif others.filter(username_skeleton__in=lookalike_skeletons(self.username)).exists():
            message = SIMILAR_USERNAME_MESSAGE
        else:
            return
        raise ValidationError({"username": ValidationError(message, code="unique")})

    def full_clean(
        self,
        exclude: Iterable[str] | None = None,
        validate_unique: bool = True,
        validate_constraints: bool = True,
    ) -> None:
        # clean() reports a look-alike on `username`, the field forms show; the skeleton's own
        # unique check would repeat it under a field no form has.
        exclude = {*(exclude or ()), "username_skeleton"}
        super().full_clean(exclude, validate_unique, validate_constraints)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.username_skeleton = username_skeleton(self.username or "")
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "username" in update_fields:
            kwargs["update_fields"] = {*update_fields, "username_skeleton"}
        super().save(*args, **kwargs)


class LoginSession(models.Model):
    """One sign-in: the refresh tokens rotated from one login, and the access tokens they mint.

    Tokens name their session in the `sid` claim (accounts.tokens). A session ends for good
    when it is revoked: every token of it is then refused at its next use, access tokens
    included, and the realtime layer closes its sockets. A new login starts a new session.
    """

    class EndReason(models.TextChoices):
        LOGOUT = "logout", "Signed out"
        LOGOUT_EVERYWHERE = "logout_everywhere", "Signed out everywhere"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        ACCOUNT_DISABLED = "account_disabled", "Account disabled"
        REFRESH_REUSE = "refresh_reuse", "A used refresh token was replayed"
        REVOKED_BY_ADMIN = "revoked_by_admin", "Revoked by an administrator"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="login_sessions")
    created_at = models.DateTimeField(auto_now_add=True)
    # The last refresh; `expires_at` is the newest refresh token's expiry.
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "sign-in session"
        indexes = [
            models.Index(fields=["user", "revoked_at"], name="accounts_session_user_open"),
        ]

    def __str__(self) -> str:
        return f"{self.user} since {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.revoked_at is None
