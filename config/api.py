"""The REST API's one error envelope, shared by every endpoint.

Every 4xx/5xx answer from /api/ has this body, whatever raised it:

    {"error": {"code": "<stable code>", "message": "<human text>", "fields": {...}}}

`fields` appears only on validation errors: {"<field>": [{"code": ..., "message": ...}]}.
docs/protocol.md lists the codes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.log import log_response
from django.views.defaults import page_not_found, server_error
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework_simplejwt.exceptions import InvalidToken

from config.backends import BACKEND_ERRORS

logger = logging.getLogger(__name__)

security_logger = logging.getLogger("realtime.security")

# DRF and SimpleJWT codes renamed to what a client author would look for.
_CODE_NAMES = {
    "parse_error": "malformed_json",
    "invalid": "validation_failed",
    "no_active_account": "invalid_credentials",
    "token_not_valid": "token_not_valid",
    "user_not_found": "token_not_valid",
    "user_inactive": "token_not_valid",
    "password_changed": "token_not_valid",
    "session_not_found": "token_not_valid",
    "session_revoked": "token_not_valid",
    "refresh_reuse": "token_not_valid",
}


def client_address(request: HttpRequest) -> str:
    """The peer address daphne saw (the real client's when behind nginx with --proxy-headers)."""
    return request.META.get("REMOTE_ADDR") or "-"


def error_body(code: str, message: str, fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def _too_large_message() -> str:
    return f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."


class RequestTooLarge(exceptions.APIException):
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE, met while DRF parsed it (Django raises
    RequestDataTooBig, a SuspiciousOperation DRF does not know: it would be a 500)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"

    def __init__(self) -> None:
        super().__init__(_too_large_message(), self.default_code)


def _code_and_message(exc: exceptions.APIException) -> tuple[str, str]:
    detail = exc.detail
    if isinstance(exc, InvalidToken) and isinstance(detail, dict):
        # SimpleJWT puts the specific reason ("Token is expired") in `messages`.
        # SimpleJWT's shape: a list of {"token_class", "token_type", "message"}.
        messages: Any = detail.get("messages") or []
        message = str(messages[0]["message"]) if messages else str(detail.get("detail", ""))
        return "token_not_valid", message
    if isinstance(detail, dict) and "code" in detail:
        code, message = str(detail["code"]), str(detail.get("detail", exc.default_detail))
    elif isinstance(detail, exceptions.ErrorDetail):
        code, message = detail.code or exc.default_code, str(detail)
    else:
        code, message = exc.default_code, str(exc.default_detail)
    return _CODE_NAMES.get(code, code), message


def _field_errors(exc: exceptions.ValidationError) -> Mapping[str, Any]:
    details = exc.get_full_details()
    if isinstance(details, list):
        return {"non_field_errors": details}
    return details


def _submitted_username(request: Any) -> str | None:
    """The username a login attempt named, if any (for the security log; never the password)."""
    try:
        data = request.data
    except exceptions.ParseError:
        return None
    username = data.get("username") if isinstance(data, dict) else None
    return username[:150] if isinstance(username, str) else None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's handler (for headers like Retry-After and WWW-Authenticate), then our envelope."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        # RequestBodyLimitMiddleware answers these first; this covers a view reached without it.
        exc = RequestTooLarge()
    response = drf_exception_handler(exc, context)
    request = context.get("request")
    if response is None and isinstance(exc, BACKEND_ERRORS):
        # Redis (cache, throttles, tickets) or the database is down: the client should retry.
        logger.error(
            "API backend unavailable path=%s error=%s",
            getattr(request, "path", "-"),
            type(exc).__name__,
        )
        return Response(
            error_body("unavailable", "A backing service is unavailable; retry later."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if response is None:
        logger.error("unhandled API error path=%s", getattr(request, "path", "-"), exc_info=exc)
        return Response(
            error_body("internal", "Internal server error."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("validation_failed", "Some fields are invalid.", _field_errors(exc))
    elif isinstance(exc, exceptions.Throttled):
        body = error_body("throttled", "Too many requests; retry after the Retry-After delay.")
        # Throttled sets `wait` in __init__; djangorestframework-stubs does not declare it.
        wait = exc.wait  # type: ignore[attr-defined]
        body["error"]["retry_after"] = wait and int(wait + 0.999)
    else:
        # DRF's handler answers APIExceptions only (the ones above were converted to them).
        body = error_body(*_code_and_message(cast(exceptions.APIException, exc)))
    if isinstance(exc, exceptions.AuthenticationFailed) and request is not None:
        security_logger.warning(
            "api authentication failed code=%s path=%s addr=%s username=%r",
            body["error"]["code"],
            request.path,
            client_address(request),
            _submitted_username(request),
        )
    response.data = body
    return response


def not_found(request: HttpRequest, exception: Exception) -> Any:
    """404 page: the JSON envelope under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return page_not_found(request, exception)


def internal_error(request: HttpRequest) -> Any:
    """500 page: the JSON envelope under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("internal", "Internal server error."), status=500)
    return server_error(request)


class RequestBodyLimitMiddleware(MiddlewareMixin):
    """413 for a request body over DATA_UPLOAD_MAX_MEMORY_SIZE, before anything parses it.

    Left to Django, such a body raises RequestDataTooBig wherever it is first read: inside a
    DRF view that is an unhandled exception (500, a traceback in the log); in the CSRF check
    of an admin form, a 400 logged at ERROR with a traceback. Reading the body here, through
    Django's own size check (Content-Length, then the bytes that actually arrived, so a
    chunked body without Content-Length is held to it too), answers every oversized body the
    same way: the JSON envelope under /api/, plain text elsewhere, one WARNING line.

    The body is already in daphne's memory (or a spooled file) by then: nginx's
    client_max_body_size is what keeps it from being received at all.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        try:
            request.body  # noqa: B018 (read for its size check; Django keeps it for later)
        except RequestDataTooBig:
            return request_too_large(request)
        return None


def request_too_large(request: HttpRequest) -> HttpResponse:
    """413: the JSON envelope under /api/, plain text elsewhere; logged once, no traceback."""
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            error_body("too_large", _too_large_message()), status=413
        )
    else:
        response = HttpResponse(
            f"{_too_large_message()}\n", status=413, content_type="text/plain; charset=utf-8"
        )
    # Logs on django.request at WARNING (a 4xx) and marks the response logged, so Django's
    # handler does not add its own "Request Entity Too Large" line for it.
    log_response(
        "Request body too large: %s addr=%s limit=%d",
        request.path,
        client_address(request),
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        response=response,
        request=request,
    )
    return response
