"""The OpenAPI schema of the REST API (drf-spectacular, config/openapi.py): docs/openapi.yaml is
what the code generates now, the generator has nothing to warn about, the schema and its docs
page are served without authentication and within the Content-Security-Policy, and the bodies
the API really sends match the schema (error envelope included)."""

from __future__ import annotations

import copy
import difflib
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from jsonschema import Draft202012Validator
from rest_framework.test import APIClient

from config.openapi import REGENERATE
from realtime import services
from realtime.models import Message
from tests.conftest import PASSWORD, token_pair

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.yaml"
ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"


def generate(*args: str) -> str:
    out = io.StringIO()
    call_command("spectacular", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return yaml.safe_load(COMMITTED.read_text())


def operations(schema: dict[str, Any]):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


# --- The committed document ----------------------------------------------------------------


def test_committed_schema_is_what_the_code_generates():
    generated = generate()
    committed = COMMITTED.read_text()
    if generated != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                generated.splitlines(keepends=True),
                "docs/openapi.yaml (committed)",
                "generated from the code",
                n=2,
            )
        )
        pytest.fail(
            f"docs/openapi.yaml is out of date with the REST views; run: {REGENERATE}\n{diff}",
            pytrace=False,
        )


def test_schema_generates_without_warnings_and_validates(tmp_path, capsys):
    # What `make openapi` runs: drf-spectacular's warnings (an unresolved serializer, a path
    # parameter of unknown type...) fail it, and the result is checked against OpenAPI 3.0.
    try:
        generate("--validate", "--fail-on-warn", "--file", str(tmp_path / "openapi.yaml"))
    except CommandError as exc:
        pytest.fail(f"{exc}\n{capsys.readouterr().err}", pytrace=False)
    assert (tmp_path / "openapi.yaml").read_text() == COMMITTED.read_text()


def test_every_api_operation_documents_its_errors_with_the_envelope(schema):
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        successes = [code for code in responses if code.startswith("2")]
        assert len(successes) == 1, (method, path)
        if not path.startswith("/api/"):
            continue  # /healthz answers 503 with its own body
        assert {"500", "503"} <= set(responses), (method, path)
        for code, response in responses.items():
            if code[0] in "45":
                content = response["content"]["application/json"]["schema"]
                assert content == {"$ref": ENVELOPE_REF}, (method, path, code)
                assert response["description"].startswith("`"), (method, path, code)


def test_error_envelope_component_has_code_message_and_optional_fields(schema):
    components = schema["components"]["schemas"]
    assert components["ErrorEnvelope"]["required"] == ["error"]
    error = components["Error"]
    assert error["required"] == ["code", "message"]
    assert set(error["properties"]) == {"code", "message", "fields", "retry_after"}


def test_token_requirements_follow_the_views(schema):
    bearer = [{"bearerAuth": []}]
    secured = {
        (path, method)
        for path, method, operation in operations(schema)
        if operation.get("security") == bearer
    }
    public = {
        ("/api/auth/register/", "post"),
        ("/api/auth/token/", "post"),
        ("/api/auth/token/refresh/", "post"),
        ("/api/auth/token/verify/", "post"),
        ("/api/auth/logout/", "post"),
        ("/healthz", "get"),
    }
    everything = {(path, method) for path, method, _ in operations(schema)}
    assert secured == everything - public
    scheme = schema["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert "401" in schema["paths"]["/api/rooms/"]["get"]["responses"]
    assert "401" not in schema["paths"]["/api/auth/register/"]["post"]["responses"]


def test_documented_operations_are_the_api(schema):
    assert sorted((path, method) for path, method, _ in operations(schema)) == [
        ("/api/auth/logout/", "post"),
        ("/api/auth/me/", "get"),
        ("/api/auth/password/", "post"),
        ("/api/auth/register/", "post"),
        ("/api/auth/token/", "post"),
        ("/api/auth/token/refresh/", "post"),
        ("/api/auth/token/verify/", "post"),
        ("/api/realtime/ticket/", "post"),
        ("/api/rooms/", "get"),
        ("/api/rooms/", "post"),
        ("/api/rooms/{slug}/members/", "get"),
        ("/api/rooms/{slug}/members/", "post"),
        ("/api/rooms/{slug}/members/{username}/", "delete"),
        ("/api/rooms/{slug}/messages/", "get"),
        ("/healthz", "get"),
    ]
    logout = schema["paths"]["/api/auth/logout/"]["post"]
    assert logout["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LogoutRequest"
    }
    assert "everywhere" in schema["components"]["schemas"]["LogoutRequest"]["properties"]
    history = schema["paths"]["/api/rooms/{slug}/messages/"]["get"]["parameters"]
    assert {p["name"] for p in history if p["in"] == "query"} == {"before", "after", "limit"}


# --- Served: /api/schema/ and /api/docs/ ---------------------------------------------------


@pytest.mark.django_db
def test_schema_endpoint_serves_the_schema_without_authentication(schema):
    client = Client()
    as_yaml = client.get("/api/schema/")
    as_json = client.get("/api/schema/?format=json")
    # A bad token is not refused here: the schema is public.
    with_bad_token = client.get("/api/schema/", HTTP_AUTHORIZATION="Bearer not-a-token")

    assert as_yaml.status_code == 200
    assert as_yaml["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(as_yaml.content) == schema
    assert as_json.status_code == 200
    assert as_json.json() == schema
    assert with_bad_token.status_code == 200


@pytest.mark.django_db
def test_docs_page_loads_without_authentication_within_the_csp():
    client = Client()
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    html = response.content.decode()
    # Nothing inline for the policy to refuse, nothing from another host.
    assert "<style" not in html
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
    assert " style=" not in html
    assert "//" not in html.replace("<!DOCTYPE html>", "")
    # Every script and stylesheet is one of ours: the init script or a sidecar static file.
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/api/docs/?script=" in urls
    statics = [url for url in urls if url.startswith("/static/")]
    assert len(statics) == len(urls) - 1 == 4
    for url in statics:
        assert finders.find(url.removeprefix("/static/")), url


@pytest.mark.django_db
def test_docs_page_script_is_a_separate_file_loading_the_schema():
    response = Client().get("/api/docs/?script=")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    script = response.content.decode()
    assert "SwaggerUIBundle(" in script
    assert 'url: "/api/schema/"' in script
    assert '"validatorUrl": null' in script  # the validator badge would load an outside image


# --- What the API sends matches the schema ---------------------------------------------------


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects as JSON Schema: `nullable` becomes a null alternative, and
    objects with listed properties refuse others (an undocumented key is a finding)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _json_schema(value) for key, value in node.items()}
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    if node.pop("nullable", False):
        return {"anyOf": [{"type": "null"}, node]}
    return node


class Checker:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.components = _json_schema(copy.deepcopy(schema["components"]))
        self.checked: set[tuple[str, str, str]] = set()

    def __call__(self, response, path: str, method: str) -> None:
        status = str(response.status_code)
        responses = self.schema["paths"][path][method]["responses"]
        assert status in responses, f"{method} {path} answered {status}, not documented"
        documented = responses[status]
        if "content" not in documented:
            assert not response.content, (method, path, status)
        else:
            body_schema = _json_schema(documented["content"]["application/json"]["schema"])
            validator = Draft202012Validator({**body_schema, "components": self.components})
            errors = [error.message for error in validator.iter_errors(response.json())]
            assert errors == [], (method, path, status, response.json())
        self.checked.add((path, method, status))


@pytest.mark.django_db
def test_bodies_the_api_sends_match_the_schema(schema, make_user, mailoutbox):
    check = Checker(schema)
    anonymous = APIClient()
    alice = make_user("alice")
    bob = make_user("bob")
    client = APIClient()
    access, _ = token_pair(alice)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")

    register = "/api/auth/register/"
    body = {"username": "newcomer", "email": "newcomer@example.com", "password": "x-Pass-94k!q"}
    check(anonymous.post(register, body, format="json"), register, "post")
    check(anonymous.post(register, {**body, "email": "nope"}, format="json"), register, "post")
    check(anonymous.post(register, "{", content_type="application/json"), register, "post")
    credentials = {"username": "bob", "password": PASSWORD}
    login = anonymous.post("/api/auth/token/", credentials, format="json")
    check(login, "/api/auth/token/", "post")
    wrong = {"username": "bob", "password": "wrong"}
    check(anonymous.post("/api/auth/token/", wrong, format="json"), "/api/auth/token/", "post")
    bob_refresh = login.json()["refresh"]
    pair = anonymous.post("/api/auth/token/refresh/", {"refresh": bob_refresh}, format="json")
    check(pair, "/api/auth/token/refresh/", "post")
    spent = anonymous.post("/api/auth/token/refresh/", {"refresh": bob_refresh}, format="json")
    check(spent, "/api/auth/token/refresh/", "post")
    verify = anonymous.post("/api/auth/token/verify/", {"token": access}, format="json")
    check(verify, "/api/auth/token/verify/", "post")
    check(client.get("/api/auth/me/"), "/api/auth/me/", "get")
    check(anonymous.get("/api/auth/me/"), "/api/auth/me/", "get")

    room = {"slug": "lobby", "title": "Lobby"}
    check(client.post("/api/rooms/", room, format="json"), "/api/rooms/", "post")
    check(client.post("/api/rooms/", room, format="json"), "/api/rooms/", "post")  # taken
    check(client.get("/api/rooms/"), "/api/rooms/", "get")
    lobby = services.room_create(creator=bob, slug="bobs", title="Bob's", is_private=True)
    messages = [services.message_store(room=lobby, author=bob, body=f"m{i}") for i in range(3)]
    services.message_redact(messages=Message.objects.filter(pk=messages[0].pk))
    bob.delete()  # the messages keep their place, with no author
    services.membership_add(room=lobby, user=alice)
    history = "/api/rooms/{slug}/messages/"
    check(client.get("/api/rooms/bobs/messages/?limit=2"), history, "get")
    check(client.get("/api/rooms/bobs/messages/?before=1&after=1"), history, "get")
    check(client.get("/api/rooms/nowhere/messages/"), history, "get")
    members = "/api/rooms/{slug}/members/"
    check(client.get("/api/rooms/lobby/members/"), members, "get")
    add = client.post("/api/rooms/lobby/members/", {"username": "newcomer"}, format="json")
    check(add, members, "post")
    not_owner = client.post("/api/rooms/bobs/members/", {"username": "x"}, format="json")
    check(not_owner, members, "post")
    member = "/api/rooms/{slug}/members/{username}/"
    check(client.delete("/api/rooms/lobby/members/newcomer/"), member, "delete")
    check(client.delete("/api/rooms/lobby/members/newcomer/"), member, "delete")
    check(client.post("/api/realtime/ticket/"), "/api/realtime/ticket/", "post")

    change = {"old_password": PASSWORD, "new_password": "an-0ther-long-passphrase"}
    check(client.post("/api/auth/password/", change, format="json"), "/api/auth/password/", "post")
    _, refresh = token_pair(alice)
    logout = {"refresh": refresh, "everywhere": True}
    check(anonymous.post("/api/auth/logout/", logout, format="json"), "/api/auth/logout/", "post")
    check(anonymous.post("/api/auth/logout/", {}, format="json"), "/api/auth/logout/", "post")

    statuses = {status for _, _, status in check.checked}
    assert {"200", "201", "204", "400", "401", "403", "404"} <= statuses
