"""Signals other apps listen to; accounts never imports them."""

from django.dispatch import Signal

# Sent after the commit that ended sign-in sessions, one signal per user, with:
#   user_id (int);
#   session_ids (list[str] | None): the sessions that ended, None for every session of the
#       user, including any that ended earlier (deactivation, deletion, sign-out everywhere);
#   keep (str | None): a session that stays open although session_ids is None (the one
#       that changed the password);
#   reason (str): a LoginSession.EndReason value, or "account_deleted".
# Live sockets of those sessions must close.
sessions_revoked = Signal()
