"""Signals other apps listen to; accounts never imports them."""

from django.dispatch import Signal

# Sent after users are deactivated, with `user_ids` (list[int]): live sessions must end.
users_deactivated = Signal()
