"""Signal receivers that carry admin and API changes to live sockets.

They run after the database commit, synchronously, from admin actions and views. A Redis
failure here is logged, never raised: the change is already stored, and the checks on
every join and send enforce it even if a socket missed the event (and a socket's lifetime
is bounded by its access token's, whose refresh checks the session again).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from accounts.signals import sessions_revoked
from realtime import groups
from realtime.models import Membership, Room

logger = logging.getLogger("realtime.connection")


def _publish(event: Callable[..., Awaitable[None]], *args: Any, **kwargs: Any) -> None:
    try:
        async_to_sync(event)(*args, **kwargs)
    except Exception:
        logger.exception("could not publish %s to live sockets", event.__name__)


@receiver(sessions_revoked)
def _close_revoked_sockets(
    *,
    user_id: int,
    session_ids: list[str] | None,
    keep: str | None,
    reason: str,
    **kwargs: Any,
) -> None:
    # accounts sends this after its commit already.
    _publish(
        groups.end_sessions,
        user_id,
        reason=reason,
        session_ids=None if session_ids is None else [str(pk) for pk in session_ids],
        keep=keep,
    )


@receiver(post_delete, sender=Membership)
def _revoke_deleted_membership(*, instance: Membership, **kwargs: Any) -> None:
    user_id, room_id = instance.user_id, instance.room_id
    transaction.on_commit(lambda: _publish(groups.revoke_membership, user_id, room_id))


@receiver(post_delete, sender=Room)
def _close_deleted_room(*, instance: Room, **kwargs: Any) -> None:
    room_id = instance.pk
    transaction.on_commit(lambda: _publish(groups.announce_room_closed, room_id))
