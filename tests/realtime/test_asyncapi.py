"""docs/asyncapi.json is the machine-readable contract (realtime.asyncapi): it must be what the
code generates now, cover every frame and code, be valid AsyncAPI 3.0, agree with the examples
of docs/protocol.md, and be served as is."""

from __future__ import annotations

import difflib
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from realtime.asyncapi import REGENERATE, REPLIES, build_document, render
from realtime.frames import SERVER_FRAMES
from realtime.protocol import FRAME_TYPES, CloseCode, ErrorCode, close_action

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "asyncapi.json"
PROTOCOL_MD = ROOT / "docs" / "protocol.md"
# The official JSON Schema of AsyncAPI 3.0.0; source and licence in data/README.md.
ASYNCAPI_SCHEMA = Path(__file__).parent / "data" / "asyncapi-3.0.0.schema.json"
# A base URI for the document, so its payloads' `#/components/...` refs resolve in jsonschema.
DOC_BASE = "urn:chat:asyncapi"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document()


def messages_of(document: dict[str, Any], action: str) -> list[dict[str, Any]]:
    """The message objects the operations with this action carry, once per operation."""
    found = []
    for operation in document["operations"].values():
        if operation["action"] != action:
            continue
        for ref in operation["messages"]:
            found.append(resolve(document, resolve(document, ref)))
    return found


def resolve(document: dict[str, Any], node: dict[str, Any]) -> Any:
    """Follow a local `$ref` (a JSON pointer into the document); other nodes as they are."""
    if "$ref" not in node:
        return node
    ref = node["$ref"]
    assert ref.startswith("#/"), ref
    target: Any = document
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


# --- (a) the committed document ----------------------------------------------------------


def test_committed_document_is_what_the_code_generates():
    expected = render(build_document())
    actual = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.exists() else ""
    if actual != expected:
        diff = difflib.unified_diff(
            actual.splitlines(), expected.splitlines(), "committed", "generated", lineterm=""
        )
        pytest.fail(
            f"docs/asyncapi.json is stale: run `{REGENERATE}`\n" + "\n".join(list(diff)[:40]),
            pytrace=False,
        )


def test_command_writes_the_document_to_stdout_and_to_a_file(tmp_path):
    expected = render(build_document())
    stdout = io.StringIO()
    call_command("asyncapi", stdout=stdout)
    assert stdout.getvalue() == expected
    target = tmp_path / "asyncapi.json"
    call_command("asyncapi", output=str(target))
    call_command("asyncapi", output=str(target))  # overwrites: same bytes again
    assert target.read_bytes() == expected.encode()
    assert expected.endswith("}\n")


# --- (b) every frame and code ------------------------------------------------------------


def test_every_client_frame_is_one_send_message(document):
    sent = messages_of(document, "send")
    assert Counter(message["name"] for message in sent) == Counter(list(FRAME_TYPES))
    for message in sent:
        assert message["payload"]["properties"]["type"]["const"] == message["name"]


def test_every_server_frame_is_one_receive_message(document):
    received = messages_of(document, "receive")
    assert Counter(message["name"] for message in received) == Counter(list(SERVER_FRAMES))
    for message in received:
        assert message["payload"]["properties"]["type"]["const"] == message["name"]


def test_components_hold_exactly_the_frames(document):
    components = document["components"]["messages"]
    assert len(components) == len(FRAME_TYPES) + len(SERVER_FRAMES)
    assert set(document["channels"]["chat"]["messages"]) == set(components)


def test_every_client_frame_declares_its_replies():
    # A new client frame needs its entry: which server frames answer it (besides `error`).
    assert set(REPLIES) == set(FRAME_TYPES), "update REPLIES in realtime/asyncapi.py"
    for replies in REPLIES.values():
        assert set(replies) <= set(SERVER_FRAMES)


def test_every_error_code_is_listed_with_its_meaning(document):
    listed = document["x-error-codes"]
    assert [entry["code"] for entry in listed] == [code.value for code in ErrorCode]
    for entry in listed:
        assert entry["description"], f"{entry['name']}: add a comment to its ErrorCode member"
    error_payload = document["components"]["messages"]["server.error"]["payload"]
    enum = resolve(document, error_payload["properties"]["code"])["enum"]
    assert enum == [code.value for code in ErrorCode]


def test_every_close_code_is_listed_with_its_action(document):
    listed = document["x-close-codes"]
    assert [entry["code"] for entry in listed] == [int(code) for code in CloseCode]
    for entry in listed:
        code = CloseCode(entry["code"])
        assert entry["name"] == code.name
        assert entry["action"] == close_action(code).value
        assert entry["description"], f"{code.name}: add a comment to its CloseCode member"


def test_close_code_ranges_agree_with_close_action(document):
    ranges = document["x-close-code-ranges"]
    assert ranges[0]["from"] == 1000
    assert ranges[-1]["to"] == 4999
    for entry in ranges:
        for code in range(entry["from"], entry["to"] + 1):
            assert close_action(code).value == entry["action"], code


def test_send_body_carries_the_length_cap_from_settings(document, settings):
    body = document["components"]["messages"]["client.send"]["payload"]["properties"]["body"]
    assert body["maxLength"] == settings.REALTIME["MAX_BODY_CHARS"]


# --- (c) valid AsyncAPI 3.0 --------------------------------------------------------------


def test_document_is_valid_asyncapi_3(document):
    schema = json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8"))
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message[:200]}"
        for error in validator.iter_errors(document)
    ]
    assert not errors, "\n".join(errors)


def test_the_validator_is_not_vacuous(document):
    broken = json.loads(json.dumps(document))
    broken["info"]["version"] = 1
    broken["operations"]["sendJoin"]["action"] = "publish"  # AsyncAPI 2's word
    schema = json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8"))
    assert len(list(Draft7Validator(schema).iter_errors(broken))) >= 2


def test_every_local_ref_resolves(document):
    def refs(node: Any):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = list(refs(document))
    assert found
    for node in found:
        resolve(document, node)  # raises KeyError on a dangling pointer


def test_payloads_are_valid_draft7_schemas(document):
    # The AsyncAPI Schema Object is a superset of JSON Schema draft 7.
    schemas = [message["payload"] for message in document["components"]["messages"].values()]
    schemas.extend(document["components"]["schemas"].values())
    for schema in schemas:
        Draft7Validator.check_schema(schema)  # raises SchemaError naming the keyword


# --- (d) docs/protocol.md examples -------------------------------------------------------


def protocol_md_examples() -> list[tuple[int, Any]]:
    """Every JSON value in the ```json blocks before the REST API section, by line number."""
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    rest = text.find("\n## REST API")
    examples = []
    decoder = json.JSONDecoder()
    for block in re.finditer(r"^```json\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        if rest != -1 and block.start() > rest:
            continue
        content, position = block.group(1), 0
        while True:
            while position < len(content) and content[position].isspace():
                position += 1
            if position == len(content):
                break
            line = text.count("\n", 0, block.start(1) + position) + 1
            value, position = decoder.raw_decode(content, position)
            examples.append((line, value))
    return examples


EXAMPLES = protocol_md_examples()


def payload_validator(document: dict[str, Any], key: str) -> Draft7Validator:
    # The payload's $refs point into the document's components, so the document is the root.
    registry = Registry().with_resource(
        DOC_BASE, Resource(contents=document, specification=DRAFT7)
    )
    return Draft7Validator(
        {"$ref": f"{DOC_BASE}#/components/messages/{key}/payload"}, registry=registry
    )


def test_protocol_md_has_examples_of_both_directions():
    types = {value.get("type") for _, value in EXAMPLES if isinstance(value, dict)}
    assert types & set(FRAME_TYPES)
    assert types & set(SERVER_FRAMES)


@pytest.mark.parametrize(
    "example",
    [value for _, value in EXAMPLES],
    ids=[
        f"line{line}-{value.get('type') if isinstance(value, dict) else 'value'}"
        for line, value in EXAMPLES
    ],
)
def test_protocol_md_example_matches_its_schema(document, example):
    assert isinstance(example, dict), "an example frame must be a JSON object"
    frame_type = example.get("type")
    # `typing` is a client and a server frame: the example must be one of them.
    candidates = [
        key
        for key, message in document["components"]["messages"].items()
        if message["name"] == frame_type
    ]
    assert candidates, f"docs/protocol.md shows a frame type the code lacks: {frame_type!r}"
    problems = []
    for key in candidates:
        errors = list(payload_validator(document, key).iter_errors(example))
        if not errors:
            return
        problems.extend(f"{key}: {error.message[:200]}" for error in errors)
    pytest.fail("\n".join(problems), pytrace=False)


# --- (e) served ---------------------------------------------------------------------------


def test_endpoint_serves_the_document_without_authentication(document):
    url = reverse("realtime:asyncapi")
    assert url == "/api/realtime/asyncapi.json"
    response = Client().get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == render(document).encode()
    assert "public" in response["Cache-Control"]
    assert "max-age" in response["Cache-Control"]
    # Revalidation costs nothing: the same ETag gets a 304 with no body.
    again = Client().get(url, headers={"if-none-match": response["ETag"]})
    assert again.status_code == 304
    assert Client().post(url).status_code == 405
