"""Security headers on every response: a strict Content-Security-Policy and friends.

The chat page (templates/index.html) loads one module script and one stylesheet from
/static/ and opens a WebSocket to its own host: nothing inline, nothing from elsewhere, so
the policy allows exactly that. Injected markup could neither run a script nor load one,
nor restyle the page, nor send data to another host. Django's own SecurityMiddleware and
XFrameOptionsMiddleware already send nosniff, Referrer-Policy, Cross-Origin-Opener-Policy
and X-Frame-Options; this adds what they do not.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

# connect-src names the page's own host for ws:/wss: too: 'self' covers them in current
# browsers (CSP Level 3), not in older ones.
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self' ws://{host} wss://{host}; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# No feature of the chat needs these; a script that got in could not either.
_PERMISSIONS = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
    "interest-cohort=(), browsing-topics=()"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Django's debug error pages carry inline styles and scripts; local runs only.
        if settings.DEBUG and response.status_code >= 400:
            return response
        try:
            host = request.get_host()
        except DisallowedHost:  # answered 400 already; there is no page to protect
            return response
        response.headers.setdefault("Content-Security-Policy", _POLICY.format(host=host))
        response.headers.setdefault("Permissions-Policy", _PERMISSIONS)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
