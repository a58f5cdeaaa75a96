"""A message post in one PostgreSQL statement: the hot path of realtime.services.message_post.

The ORM path takes seven round trips per message (authorize; look up the client_id; BEGIN;
increment the room's last_seq; read it back; insert; COMMIT), and a busy socket sends its
messages one after another. This statement does the same work in one: it increments last_seq
only if the author may post (open session, active account, public room or a membership) and
has not used the client_id, and inserts the message with the new seq, atomically (a failed
insert rolls the increment back with it). When it stores nothing, message_post takes the ORM
path, which finds out why (and answers with the right error) or stores the message if the
refusal was a race that has since resolved.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import connection

from accounts.models import LoginSession, User
from realtime.models import Membership, Message, Room


class Stored(NamedTuple):
    room_id: int
    message_id: int
    seq: int


@cache
def _statement(*, with_client_id: bool) -> str:
    # Identifiers come from the models, values travel as parameters: nothing from a client
    # is ever formatted into the SQL (hence the noqa: S608 below).
    q = connection.ops.quote_name
    room, membership = q(Room._meta.db_table), q(Membership._meta.db_table)
    message, session, user = (
        q(Message._meta.db_table),
        q(LoginSession._meta.db_table),
        q(User._meta.db_table),
    )
    unused_client_id = (
        f"AND NOT EXISTS (SELECT 1 FROM {message} e"  # noqa: S608
        " WHERE e.author_id = %(user)s AND e.client_id = %(client_id)s)"
        if with_client_id
        else ""
    )
    return (
        f"WITH r AS (UPDATE {room} SET last_seq = last_seq + 1"  # noqa: S608
        " WHERE slug = %(slug)s"
        f" AND (NOT is_private OR EXISTS (SELECT 1 FROM {membership} m"
        f" WHERE m.room_id = {room}.id AND m.user_id = %(user)s))"
        f" AND EXISTS (SELECT 1 FROM {session} s JOIN {user} u ON u.id = s.user_id"
        " WHERE s.id = %(session)s AND s.user_id = %(user)s"
        " AND s.revoked_at IS NULL AND u.is_active)"
        f" {unused_client_id}"
        " RETURNING id, last_seq)"
        f" INSERT INTO {message} (room_id, author_id, body, created_at, seq, client_id)"
        " SELECT r.id, %(user)s, %(body)s, %(now)s, r.last_seq, %(client_id)s FROM r"
        " RETURNING room_id, id, seq"
    )


def post_in_one_statement(
    *, user_id: int, session_id: str, slug: str, body: str, client_id: str | None, now: datetime
) -> Stored | None:
    """Store the message and return where; None when nothing was stored (no such room, no
    access, session ended, or client_id used before: the caller's ORM path tells which).

    Runs in autocommit (one statement is its own transaction); raises IntegrityError when a
    concurrent send with the same client_id won the race.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return None
    try:
        session = LoginSession._meta.pk.get_db_prep_value(session_id, connection)
    except (ValueError, ValidationError):
        return None
    params = {
        "user": user_id,
        "session": session,
        "slug": slug,
        "body": body,
        "client_id": client_id,
        "now": now,
    }
    with connection.cursor() as cursor:
        cursor.execute(_statement(with_client_id=client_id is not None), params)
        row = cursor.fetchone()
    return None if row is None else Stored(*row)
