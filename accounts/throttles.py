"""Per-client-address throttles for the endpoints that guess at passwords or create accounts."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class ClientAddressRateThrottle(SimpleRateThrottle):
    """Throttles by client address, signed in or not, at the rate its scope has in settings."""

    # Every subclass names one.
    scope: str

    def get_rate(self) -> str | None:
        # Looked up per request (DRF reads it once at import), so settings overrides apply.
        # djangorestframework-stubs types the rates as numbers; they are "10/min" strings.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # type: ignore[return-value]

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginRateThrottle(ClientAddressRateThrottle):
    scope = "login"


class RegisterRateThrottle(ClientAddressRateThrottle):
    scope = "register"
