"""Every error under /api/ is the one JSON envelope; pages elsewhere stay Django's."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import RequestFactory
from rest_framework import serializers
from rest_framework.permissions import AllowAny
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
