"""Signal receivers that carry admin and API changes to live sockets.

They run after the database commit, synchronously, from admin actions and views. A Redis
failure here is logged, never raised: the change is already stored, and the checks on
every join and send enforce it even if a socket missed the event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from accounts.signals import users_deactivated
from realtime import groups
from realtime.models import Membership, Room

logger = logging.getLogger("realtime.connection")


def _send_after_commit(event: Callable[..., Awaitable[None]], *args: Any) -> None:
    def send() -> None:
        try:
            async_to_sync(event)(*args)
        except Exception:
            logger.exception("could not publish %s to live sockets", event.__name__)

    transaction.on_commit(send)


@receiver(users_deactivated)
def _end_deactivated_sessions(*, user_ids: list[int], **kwargs: Any) -> None:
    for user_id in user_ids:
        _send_after_commit(groups.end_sessions, user_id, "account_disabled")


@receiver(post_delete, sender=Membership)
def _revoke_deleted_membership(*, instance: Membership, **kwargs: Any) -> None:
    _send_after_commit(groups.revoke_membership, instance.user_id, instance.room.slug)


@receiver(post_delete, sender=Room)
def _close_deleted_room(*, instance: Room, **kwargs: Any) -> None:
    _send_after_commit(groups.announce_room_closed, instance.slug)
