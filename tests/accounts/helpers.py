"""Helpers for the accounts tests: the error envelope and hand-made tokens."""

from __future__ import annotations

import base64
import json
from typing import Any

from django.conf import settings


def assert_error(response, status: int, code: str, *, fields: bool = False) -> dict[str, Any]:
    """Assert the response is the API's error envelope with this status and code."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    expected_keys = {"code", "message", "fields"} if fields else {"code", "message"}
    assert set(error) == expected_keys, error
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


def field_codes(error: dict[str, Any], field: str) -> list[str]:
    return [item["code"] for item in error["fields"][field]]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def jwt_payload(token: str) -> dict[str, Any]:
    """The payload of a compact JWT, decoded without checking anything."""
    return json.loads(b64url_decode(token.split(".")[1]))


def signing_key() -> str:
    return settings.SIMPLE_JWT["SIGNING_KEY"]
