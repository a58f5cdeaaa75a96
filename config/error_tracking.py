"""Error tracking: Sentry's SDK (or any tracker that speaks its protocol: GlitchTip, Bugsink),
on when SENTRY_DSN is set, off otherwise.

What leaves the process is what the logs may hold, no more: every string of an event goes
through the same redaction as the logs (config.logs.redact), the request's cookies, body,
query string and credentials are dropped before sending, and frames carry no local
variables (a token or a password is a local variable somewhere). Exceptions that Django
answers with a 500, and every ERROR log record (a failed frame, a lost channel layer),
become events; INFO and WARNING records ride along as breadcrumbs.
"""

from __future__ import annotations

import logging
from typing import Any

from sentry_sdk.types import Breadcrumb, BreadcrumbHint, Event, Hint

from config.logs import redact

# Request parts that are credentials or may carry one.
_DROPPED_REQUEST_KEYS = ("cookies", "data", "query_string", "env")
_DROPPED_HEADERS = frozenset({"authorization", "cookie", "sec-websocket-protocol", "x-csrftoken"})


def scrub(value: Any) -> Any:
    """`value` with every string redacted, containers walked (a new structure)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value


def scrub_event(event: Event, hint: Hint | None = None) -> Event:
    """Sentry's before_send: the event without credentials."""
    request: Any = event.get("request")
    if isinstance(request, dict):
        for key in _DROPPED_REQUEST_KEYS:
            request.pop(key, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                name: value
                for name, value in headers.items()
                if name.lower() not in _DROPPED_HEADERS
            }
        url = request.get("url")
        if isinstance(url, str):
            request["url"] = url.split("?", 1)[0]
    scrubbed: Event = scrub(event)
    return scrubbed


def scrub_breadcrumb(crumb: Breadcrumb, hint: BreadcrumbHint | None = None) -> Breadcrumb | None:
    """Sentry's before_breadcrumb: the same redaction."""
    return scrub(crumb)


def init_error_tracking(
    dsn: str, *, environment: str, release: str | None, traces_sample_rate: float
) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=traces_sample_rate,
        before_send=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        integrations=[
            DjangoIntegration(),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
    )
