"""Nothing the error tracker sends carries a credential (switching it on: test_settings.py)."""

from __future__ import annotations

import json

from config.error_tracking import scrub_breadcrumb, scrub_event
from config.logs import REDACTED

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwidXNlcl9pZCI6IjQyIn0"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)


def test_an_event_leaves_without_credentials_cookies_bodies_or_query_strings():
    event = {
        "message": f"ws frame crashed token={JWT}",
        "exception": {"values": [{"type": "ValueError", "value": f"bad {JWT}"}]},
        "request": {
            "url": "https://chat.example.com/api/realtime/ticket/?ticket=t1ck3t",
            "query_string": "ticket=t1ck3t",
            "cookies": {"sessionid": "s3ss10n"},
            "data": {"password": "hunter2"},
            "headers": {
                "Authorization": f"Bearer {JWT}",
                "Cookie": "sessionid=s3ss10n",
                "Sec-WebSocket-Protocol": f"chat.v1, bearer.{JWT}",
                "User-Agent": "pytest",
            },
        },
        "extra": {"note": "password=hunter2"},
    }

    sent = json.dumps(scrub_event(event, {}))

    for secret in (JWT, "t1ck3t", "s3ss10n", "hunter2"):
        assert secret not in sent
    assert "pytest" in sent
    assert REDACTED in sent
    assert "https://chat.example.com/api/realtime/ticket/" in sent


def test_a_breadcrumb_is_redacted_too():
    crumb = scrub_breadcrumb({"category": "log", "message": f"refresh={JWT}"}, {})

    assert JWT not in json.dumps(crumb)
