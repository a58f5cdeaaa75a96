"""The project's admin site: Django's, with its login form throttled like the API login.

Both doors to a password check share one budget: POSTs to /admin/login/ are counted by
accounts.throttles.LoginRateThrottle, with the same scope ("login", THROTTLE_LOGIN) and the
same key (the client address daphne saw) as POST /api/auth/token/. Guesses spread over the
two doors add up. Installed through config.apps.ChatAdminConfig.default_site.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

from accounts.throttles import LoginRateThrottle
from config.backends import BACKEND_ERRORS

logger = logging.getLogger(__name__)
security_logger = logging.getLogger("realtime.security")

# The browser shows the page as it is: no template, nothing that could itself fail.
_THROTTLED = "Too many login attempts from your address. Wait {seconds} seconds, then try again.\n"
_UNAVAILABLE = (
    "Login is unavailable for a moment (a backing service is down). Try again shortly.\n"
)
_UNAVAILABLE_RETRY_SECONDS = 30


def _plain(text: str, status: int, retry_after: int) -> HttpResponse:
    response = HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(retry_after)
    add_never_cache_headers(response)
    return response


def _submitted_username(request: HttpRequest) -> str | None:
    username = request.POST.get("username")
    return username[:150] if isinstance(username, str) else None


class ChatAdminSite(admin.AdminSite):
    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        # Showing the form is free; each POST is one attempt at a password, right or wrong.
        if request.method == "POST":
            refused = self._throttle(request)
            if refused is not None:
                return refused
        return super().login(request, extra_context)

    def _throttle(self, request: HttpRequest) -> HttpResponse | None:
        """None when the attempt may go ahead; the 429 or 503 to answer otherwise."""
        # A new instance per request: it reads the rate from settings when created.
        throttle = LoginRateThrottle()
        address = request.META.get("REMOTE_ADDR") or "-"
        try:
            # DRF's types want a DRF Request and view; the throttle only reads the address.
            allowed = throttle.allow_request(request, view=None)  # type: ignore[arg-type]
            wait = None if allowed else throttle.wait()
        except BACKEND_ERRORS as exc:
            # Fail closed: without its counts the throttle cannot tell a person from a script.
            logger.error(
                "admin login throttle unavailable addr=%s error=%s", address, type(exc).__name__
            )
            return _plain(_UNAVAILABLE, 503, _UNAVAILABLE_RETRY_SECONDS)
        if allowed:
            return None
        seconds = max(1, math.ceil(wait or 1))
        security_logger.warning(
            "admin login throttled path=%s addr=%s username=%r retry_after=%d",
            request.path,
            address,
            _submitted_username(request),
            seconds,
        )
        return _plain(_THROTTLED.format(seconds=seconds), 429, seconds)
