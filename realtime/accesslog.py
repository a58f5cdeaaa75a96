"""daphne's access log as docs/deployment.md describes it: paths only, one line per entry.

Stock daphne's AccessLogGenerator writes a plain HTTP request's whole URI, query string
included, so a socket URL carrying a ticket (pasted into a browser), or any credential a
client put in a query string, lands in the access log in clear; and it writes the path, the
method and the client address as they came, so control characters in them can forge or
garble lines. This generator writes the same NCSA-style lines with the query string cut off
and each field sanitized (redacted, control characters escaped: config.logs.sanitize).
`manage.py serve` installs it (realtime.server.GracefulServer); plain `daphne` keeps the
stock one.
"""

from __future__ import annotations

from typing import Any

from daphne.access import AccessLogGenerator

from config.logs import sanitize

# The fields daphne's action events carry that come from the client; status, size and
# timings are numbers daphne computed.
_CLIENT_FIELDS = ("path", "method", "client")


def access_log_path(path: str) -> str:
    """The path alone: daphne logs `uri` (path and query) for HTTP, the path for WebSockets."""
    return path.split("?", 1)[0]


class QuerylessAccessLogGenerator(AccessLogGenerator):
    """daphne's access log without query strings, control characters or credentials."""

    def __call__(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        details = dict(details)
        if isinstance(details.get("path"), str):
            details["path"] = access_log_path(details["path"])
        for field in _CLIENT_FIELDS:
            if isinstance(details.get(field), str):
                details[field] = sanitize(details[field])
        super().__call__(protocol, action, details)
