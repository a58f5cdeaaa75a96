"""End a user's sessions whenever who they are changes, however it was changed.

The services end sessions themselves on the paths they own (deactivation, sign-out, the
password API). These receivers catch every other path that saves or deletes a user: the
admin's change form (unticking "Active"), the admin's password form, `manage.py
changepassword`, a shell. Queryset updates send no signals; only services use them.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from accounts import services
from accounts.models import LoginSession, User
from accounts.signals import sessions_revoked

_WATCHED_FIELDS = frozenset({"is_active", "password"})


@receiver(pre_save, sender=User)
def _remember_credentials(
    *, instance: User, update_fields: frozenset[str] | None, **kwargs: Any
) -> None:
    instance._saved_credentials = None
    if instance.pk is None or (update_fields is not None and not _WATCHED_FIELDS & update_fields):
        return
    instance._saved_credentials = (
        User.objects.filter(pk=instance.pk).values_list("is_active", "password").first()
    )


@receiver(post_save, sender=User)
def _end_sessions_on_change(
    *, instance: User, update_fields: frozenset[str] | None, **kwargs: Any
) -> None:
    saved, instance._saved_credentials = instance._saved_credentials, None
    if saved is None:
        return
    was_active, old_password = saved
    # Django's check_password() re-hashes an unchanged password on login when the hasher's
    # cost went up: it saves only the password and clears _password first. Not a change.
    rehashed = update_fields == frozenset({"password"}) and instance._password is None
    if was_active and not instance.is_active:
        reason = LoginSession.EndReason.ACCOUNT_DISABLED
    elif old_password != instance.password and not rehashed:
        reason = LoginSession.EndReason.PASSWORD_CHANGED
    else:
        return
    services.sessions_revoke(user_ids=[instance.pk], reason=reason)


@receiver(post_delete, sender=User)
def _end_deleted_users_sessions(*, instance: User, **kwargs: Any) -> None:
    # The sessions went with the user (CASCADE); only the live sockets are left to close.
    user_id = instance.pk
    transaction.on_commit(
        lambda: sessions_revoked.send(
            sender=User, user_id=user_id, session_ids=None, keep=None, reason="account_deleted"
        )
    )
