"""GET /api/realtime/asyncapi.json: the AsyncAPI document of /ws/chat/ (realtime.asyncapi).

Public, like docs/protocol.md: it describes the protocol, not anyone's data. A plain Django
view, not a DRF one, so the API's default authentication and permission never apply. The
document is rendered once per settings value and sent with an ETag, so clients and caches
may keep it and revalidate for free.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import etag, require_safe

from realtime.asyncapi import build_document, render
from realtime.conf import RealtimeSettings, realtime_settings

# Long enough to spare repeat downloads, short enough that a deploy shows within the hour.
MAX_AGE_SECONDS = 3600


@lru_cache(maxsize=1)
def _rendered(limits: RealtimeSettings) -> tuple[bytes, str]:
    # Keyed on the settings the document reads, so override_settings(REALTIME=...) shows.
    body = render(build_document()).encode()
    return body, hashlib.sha256(body).hexdigest()


def _etag(request: HttpRequest) -> str:
    return _rendered(realtime_settings())[1]


@require_safe
@cache_control(public=True, max_age=MAX_AGE_SECONDS)
@etag(_etag)
def asyncapi_document(request: HttpRequest) -> HttpResponse:
    body, _ = _rendered(realtime_settings())
    return HttpResponse(body, content_type="application/json")
