"""Domain errors raised by services and selectors; consumers and views map them to the wire."""


class RoomNotFound(Exception):
    """No room has this slug."""


class RoomForbidden(Exception):
    """The room is private and the user is not a member (or may not do this)."""
