"""Every error under /api/ is the one JSON envelope; pages elsewhere stay Django's."""

from __future__ import annotations

import json
import logging

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import Client, RequestFactory
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from config.api import internal_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/no-such-thing/", "/api/auth/no-such-thing/", "/api/"])
def test_unknown_api_path_is_the_json_not_found_envelope(client, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


def test_unknown_page_outside_the_api_is_an_html_page(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


class Raising(APIView):
    """An API view that raises whatever the test hands it."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    exc: Exception = RuntimeError()

    def get(self, request):
        raise self.exc


def call(exc: Exception):
    request = APIRequestFactory().get("/api/raising/")
    response = Raising.as_view(exc=exc)(request)
    response.render()
    return response


def test_http404_inside_a_view_is_not_found():
    response = call(Http404("no room called lobby"))

    assert response.status_code == 404
    assert response.data == {"error": {"code": "not_found", "message": "Not found."}}


def test_django_permission_denied_inside_a_view_is_permission_denied():
    response = call(PermissionDenied())

    assert response.status_code == 403
    assert response.data["error"]["code"] == "permission_denied"
    assert set(response.data["error"]) == {"code", "message"}


def test_validation_error_without_a_field_goes_under_non_field_errors():
    response = call(serializers.ValidationError("Rooms are full.", code="full"))

    assert response.status_code == 400
    assert response.data == {
        "error": {
            "code": "validation_failed",
            "message": "Some fields are invalid.",
            "fields": {"non_field_errors": [{"message": "Rooms are full.", "code": "full"}]},
        }
    }


def test_unexpected_exception_is_a_logged_internal_error_without_details(caplog):
    caplog.set_level(logging.ERROR, logger="config.api")

    response = call(RuntimeError("database password is hunter2"))

    assert response.status_code == 500
    assert response.data == {"error": {"code": "internal", "message": "Internal server error."}}
    assert b"hunter2" not in response.content
    (record,) = [r for r in caplog.records if r.name == "config.api"]
    assert "path=/api/raising/" in record.getMessage()
    assert record.exc_info is not None


@pytest.mark.parametrize(
    ("path", "json_expected"), [("/api/rooms/", True), ("/admin/", False), ("/", False)]
)
def test_server_error_page_is_json_only_under_the_api(path, json_expected):
    response = internal_error(RequestFactory().get(path))

    assert response.status_code == 500
    if json_expected:
        assert response["Content-Type"] == "application/json"
        assert response.content == (
            b'{"error": {"code": "internal", "message": "Internal server error."}}'
        )
    else:
        assert response["Content-Type"].startswith("text/html")


# --- Oversized request bodies ------------------------------------------------------------------

# What the defect report sent: far over any limit, and over Django's default of 2.5 MB too.
THREE_MB = 3 * 1024 * 1024


class RequestLog(logging.Handler):
    """django.request records as emitted (the logger does not propagate to caplog's root)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def request_log():
    logger = logging.getLogger("django.request")
    handler = RequestLog()
    logger.handlers.insert(0, handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def json_body(size: int, **fields: str) -> bytes:
    """A JSON object of exactly `size` bytes: `fields`, then a `title` padding it out."""
    empty = json.dumps({**fields, "title": ""}).encode()
    return json.dumps({**fields, "title": "t" * (size - len(empty))}).encode()


@pytest.fixture
def staff_client(make_user):
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def assert_too_large_envelope(response):
    assert response.status_code == 413, response.content[:500]
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"code", "message"}
    assert error["code"] == "too_large"
    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in error["message"]


@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/rooms/", "/api/auth/register/"])
def test_oversized_api_body_is_413_too_large_logged_once_without_a_traceback(
    auth_client, request_log, path
):
    response = auth_client.post(
        path, json_body(THREE_MB, slug="big"), content_type="application/json"
    )

    assert_too_large_envelope(response)
    [record] = [r for r in request_log if path in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert record.status_code == 413


def test_api_body_just_over_the_limit_is_413(auth_client):
    body = json_body(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1, slug="big")

    assert_too_large_envelope(
        auth_client.post("/api/rooms/", body, content_type="application/json")
    )


def test_api_body_at_the_limit_reaches_the_view(auth_client):
    body = json_body(settings.DATA_UPLOAD_MAX_MEMORY_SIZE, slug="big")

    response = auth_client.post("/api/rooms/", body, content_type="application/json")

    # Parsed and validated: the title is over its 120 characters.
    assert response.status_code == 400, response.content[:500]
    assert response.json()["error"]["fields"]["title"][0]["code"] == "max_length"


def test_api_accepts_small_json_only():
    # nginx caps bodies at 64 KiB; without it, the application refuses anything over 256 KiB
    # (Django's default of 2.5 MiB is made for form uploads this service does not take).
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 256 * 1024


def test_oversized_admin_form_is_a_plain_413(staff_client, request_log):
    response = staff_client.post("/admin/login/", {"username": "root", "password": "x" * THREE_MB})

    assert response.status_code == 413, response.content[:500]
    assert response["Content-Type"].startswith("text/plain")
    assert b"x" * 100 not in response.content
    [record] = [r for r in request_log if "/admin/login/" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert record.exc_info is None


def test_admin_form_under_the_limit_is_served(staff_client):
    response = staff_client.post("/admin/login/", {"username": "root", "password": "x" * 1000})

    assert response.status_code == 200


class Echo(APIView):
    """An API view that parses its body."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    def post(self, request):
        return Response({"keys": sorted(request.data)})


def test_oversized_body_met_while_parsing_is_413_too_large_without_the_middleware():
    # Called directly, no middleware runs: the exception handler is the second line.
    request = APIRequestFactory().post(
        "/api/echo/", json_body(THREE_MB), content_type="application/json"
    )
    response = Echo.as_view()(request)
    response.render()

    assert response.status_code == 413
    assert response.data["error"]["code"] == "too_large"
