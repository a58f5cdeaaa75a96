"""A WebSocket ticket seen in a plain HTTP URL is spent on sight.

Tickets (realtime.tickets) belong in the query string of the WebSocket handshake, which
never reaches Django's middleware. A plain HTTP request that carries `ticket=` (the socket
URL pasted into a browser, a client that fell back to HTTP, a link someone shared) has put
the ticket where proxies, browser history and referrers keep URLs: it is redeemed, so the
copy left behind is worthless, and the event is logged to `realtime.security` without the
value. The request is then answered as if nothing happened (404, or whatever the path gives).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from django.http import HttpRequest, HttpResponse
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from config.api import client_address
from config.backends import BACKEND_ERRORS
from realtime import tickets

logger = logging.getLogger("realtime.security")

# As the handshake reads it (realtime.middleware.get_credential): parse_qs, case-sensitive.
TICKET_PARAM = "ticket"
# Bounds the store round-trips one request can cause; a leaked URL carries one ticket.
MAX_TICKETS_SPENT = 5


class BurnTicketsInUrlsMiddleware:
    """Spends every `ticket` query parameter of a plain HTTP request, then answers it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        # The common case costs one substring test. "%" too: the handshake decodes
        # parameter names, so "%74icket=" is a ticket as well.
        if TICKET_PARAM in query or "%" in query:
            values = request.GET.getlist(TICKET_PARAM)
            if values:
                self._burn(request, values[:MAX_TICKETS_SPENT])
        return self.get_response(request)

    def _burn(self, request: HttpRequest, values: list[str]) -> None:
        for value in values:
            try:
                spent = tickets.ticket_redeem(value)
            except BACKEND_ERRORS as exc:
                # Answer anyway: the ticket expires within its TTL, and an outage must not
                # turn a stray URL into a 500.
                logger.error(
                    "http ticket in url could not be spent error=%s path=%s addr=%s",
                    type(exc).__name__,
                    request.path,
                    client_address(request),
                )
                continue
            # user=None: unknown, expired or already spent. A user id means the ticket was
            # live: whoever saw this URL could have opened that user's socket.
            logger.warning(
                "http ticket in url spent user=%s path=%s addr=%s",
                _owner(spent),
                request.path,
                client_address(request),
            )


def _owner(spent: object) -> object:
    """The user id a spent ticket stood for, and nothing else of what the store held for it
    (claims: session, expiry...); None for a ticket that was not live."""
    if isinstance(spent, Mapping):
        return spent.get(jwt_settings.USER_ID_CLAIM)
    return spent
