"""Domain errors raised by services and selectors; consumers and views map them to the wire."""


class RoomNotFound(Exception):
    """No room has this slug."""


class RoomForbidden(Exception):
    """The room is private and the user is not a member (or may not do this)."""


class SessionEnded(Exception):
    """The socket's sign-in session was revoked, or its user deactivated or deleted.

    `account_gone` tells the two apart: a person signed out must sign in again; a disabled
    or deleted account must not come back at all.
    """

    def __init__(self, *, account_gone: bool) -> None:
        super().__init__("account disabled" if account_gone else "session revoked")
        self.account_gone = account_gone


class RoomQuotaExceeded(Exception):
    """The user already has as many rooms as settings.ROOMS_MAX_OWNED_PER_USER allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Room quota reached: one user may create at most {limit} rooms.")
        self.limit = limit


class ClientIdReused(Exception):
    """A send's client_id names an earlier message of the author's in another room, or with
    another body: it is not a retry of that message."""
