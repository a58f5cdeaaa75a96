"""The AsyncAPI 3.0 document of /ws/chat/, generated from the code that defines the protocol.

Contract: `build_document()` returns a valid AsyncAPI 3.0.0 document built only from the
code: the client frame models and codes of realtime.protocol, the server frame models of
realtime.frames, the handshake rules of realtime.middleware and the fixed REALTIME settings
(never one read from the environment). The same code gives the same document, and `render`
writes it byte for byte the same. docs/asyncapi.json is its committed copy (regenerate it
with `python manage.py asyncapi --output docs/asyncapi.json`; tests/realtime/test_asyncapi.py
fails while it is stale) and GET /api/realtime/asyncapi.json serves it. docs/protocol.md
stays the human contract.

Operations are written from the client's point of view: `send` operations are the frames a
client sends, `receive` operations the frames it receives. Each message's payload is the JSON
Schema pydantic generates for the frame's model, its `$defs` moved to components.schemas;
field descriptions come from the comments on the models' fields, and the meaning of each
error and close code from the comment on its enum member, so they cannot drift apart.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import re
import textwrap
import tokenize
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel

from realtime import frames, protocol
from realtime.conf import realtime_settings
from realtime.middleware import BEARER_PREFIX, FORBIDDEN_QUERY_PARAMS

ASYNCAPI_VERSION = "3.0.0"
WS_BINDING_VERSION = "0.1.0"
CHANNEL = "chat"
CHAT_PATH = "/ws/chat/"
REGENERATE = "python manage.py asyncapi --output docs/asyncapi.json"

# The server frames that answer each client frame (with its `ref`), besides `error`, which
# any frame can get (rate_limited at least). Not derivable from the models, so
# tests/realtime/test_asyncapi.py requires an entry for every client frame type.
REPLIES: dict[str, tuple[str, ...]] = {
    "join": ("joined",),
    "leave": ("left",),
    "send": ("ack",),
    "typing": (),
    "ping": ("pong",),
    "refresh": ("refreshed",),
}

Direction = Literal["client", "server"]


def build_document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the whole WebSocket protocol, both directions."""
    limits = realtime_settings()
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    channel_ref = {"$ref": f"#/channels/{CHANNEL}"}

    def message_ref(key: str) -> dict[str, str]:
        return {"$ref": f"#/channels/{CHANNEL}/messages/{key}"}

    model: type[BaseModel]
    for frame_type, model in protocol.FRAME_TYPES.items():
        key = _message_key("client", frame_type)
        # Validation mode: the schema of what the server accepts.
        payload = _payload(model, "validation", schemas)
        if model is protocol.Send:
            _limit_send_body(payload, limits.MAX_BODY_CHARS)
        messages[key] = _message("client", frame_type, model, payload)
        operation = {
            "action": "send",
            "channel": channel_ref,
            "title": f"Send `{frame_type}`",
            "messages": [message_ref(key)],
        }
        replies = (*REPLIES.get(frame_type, ()), "error")
        operation["reply"] = {
            "channel": channel_ref,
            "messages": [message_ref(_message_key("server", reply)) for reply in replies],
        }
        operations[_operation_id("send", frame_type)] = operation

    for frame_type, model in frames.SERVER_FRAMES.items():
        key = _message_key("server", frame_type)
        # Serialization mode: the schema of what frames.encode writes.
        payload = _payload(model, "serialization", schemas)
        messages[key] = _message("server", frame_type, model, payload)
        operations[_operation_id("receive", frame_type)] = {
            "action": "receive",
            "channel": channel_ref,
            "title": f"Receive `{frame_type}`",
            "messages": [message_ref(key)],
        }

    security = [{"$ref": f"#/components/securitySchemes/{name}"} for name in _SECURITY_ORDER]
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Chat WebSocket protocol",
            "version": limits.SUBPROTOCOL,
            "description": _info_description(),
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {
                "host": "{host}",
                "protocol": "wss",
                "description": "A deployment behind nginx (TLS); see docs/deployment.md.",
                "variables": {
                    "host": {
                        "description": "The deployment's public host name (and :port).",
                        "examples": ["chat.example.com"],
                    }
                },
                "security": security,
            },
            "local": {
                "host": "127.0.0.1:8000",
                "protocol": "ws",
                "description": "`make run` on a developer's machine.",
                "security": security,
            },
        },
        "channels": {
            CHANNEL: {
                "address": CHAT_PATH,
                "title": "Chat socket",
                "description": (
                    "One socket per client carries all of its rooms. Every frame, in both "
                    "directions, is a text frame holding one JSON object with a `type`; "
                    "client and server frames are told apart by direction, not by `type` "
                    "(both have a `typing`). Any other path is refused with close code "
                    f"{int(protocol.CloseCode.FORBIDDEN)}."
                ),
                "servers": [
                    {"$ref": "#/servers/production"},
                    {"$ref": "#/servers/local"},
                ],
                "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in messages},
                "bindings": {"ws": _ws_binding()},
            }
        },
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": _security_schemes(),
            "correlationIds": {
                "ref": {
                    "description": (
                        "A client frame's `ref` (1 to 64 characters), copied by the server "
                        "onto its reply: `joined`, `left`, `ack`, `pong`, `refreshed` or "
                        "`error` (null there when the frame had no valid `ref`)."
                    ),
                    "location": "$message.payload#/ref",
                }
            },
        },
        "x-error-codes": _error_codes(),
        "x-close-codes": _close_codes(),
        "x-close-code-ranges": _close_code_ranges(),
    }


def render(document: dict[str, Any]) -> str:
    """The document as committed and served: indented JSON in dict order, one final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- messages ----------------------------------------------------------------------------


def _message_key(direction: Direction, frame_type: str) -> str:
    # Prefixed by direction: `typing` is both a client and a server frame.
    return f"{direction}.{frame_type}"


def _operation_id(action: str, frame_type: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", frame_type)
    return action + "".join(word[:1].upper() + word[1:] for word in words if word)


def _message(
    direction: Direction, frame_type: str, model: type[BaseModel], payload: dict[str, Any]
) -> dict[str, Any]:
    arrow = "client to server" if direction == "client" else "server to client"
    message: dict[str, Any] = {
        "name": frame_type,
        "title": f"{frame_type} ({arrow})",
        "contentType": "application/json",
        "payload": payload,
    }
    if "ref" in model.model_fields:
        message["correlationId"] = {"$ref": "#/components/correlationIds/ref"}
    return message


def _payload(
    model: type[BaseModel],
    mode: Literal["validation", "serialization"],
    schemas: dict[str, Any],
) -> dict[str, Any]:
    """The model's JSON Schema with `$defs` moved into `schemas` and `$ref`s pointed there."""
    schema = model.model_json_schema(mode=mode, ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        nested = _models_by_name().get(name)
        if nested is not None:
            _describe_fields(definition, nested)
        if schemas.setdefault(name, definition) != definition:
            # Two models of one name, or a model whose validation and serialization schemas
            # differ, would otherwise silently share one schema.
            raise ValueError(f"two different schemas named {name!r} in the frame models")
    _describe_fields(schema, model)
    return schema


def _describe_fields(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Give each property without a description the comment on its field in the source."""
    comments: dict[str, str] = {}
    # Base classes first, so a subclass's comment on a field wins.
    for klass in reversed(model.__mro__):
        if issubclass(klass, BaseModel) and klass is not BaseModel:
            comments.update(_member_comments(klass))
    for name, prop in schema.get("properties", {}).items():
        if name in comments and "description" not in prop:
            prop["description"] = comments[name]


def _limit_send_body(payload: dict[str, Any], max_chars: int) -> None:
    """`send.body`'s cap lives in settings and is checked outside the model (parse_frame)."""
    body = payload["properties"]["body"]
    body["maxLength"] = max_chars
    body["description"] = (
        f"1 to {max_chars} characters, counted in Unicode code points (a JavaScript "
        "string's length counts an emoji as 2); not blank, and without NUL."
    )


@cache
def _models_by_name() -> dict[str, type[BaseModel]]:
    """The frame modules' models by class name: pydantic names a nested model's `$defs`
    entry after its class, so its fields can be described too."""
    return {
        name: value
        for module in (protocol, frames)
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, BaseModel)
    }


# --- codes -------------------------------------------------------------------------------


def _error_codes() -> list[dict[str, Any]]:
    meanings = _member_comments(protocol.ErrorCode)
    return [
        {
            "code": code.value,
            "name": code.name,
            "description": meanings.get(code.name, ""),
            # MAX_PROTOCOL_ERRORS of these close the socket with PROTOCOL_VIOLATION.
            "protocolViolation": code in protocol.VIOLATIONS,
        }
        for code in protocol.ErrorCode
    ]


def _close_codes() -> list[dict[str, Any]]:
    meanings = _member_comments(protocol.CloseCode)
    return [
        {
            "code": int(code),
            "name": code.name,
            "action": protocol.close_action(code).value,
            "description": meanings.get(code.name, ""),
        }
        for code in protocol.CloseCode
    ]


def _close_code_ranges() -> list[dict[str, Any]]:
    """close_action over every code a close frame may carry, as runs of one action."""
    ranges: list[dict[str, Any]] = []
    for code in range(1000, 5000):
        action = protocol.close_action(code).value
        if ranges and ranges[-1]["action"] == action:
            ranges[-1]["to"] = code
        else:
            ranges.append({"from": code, "to": code, "action": action})
    return ranges


# --- handshake ---------------------------------------------------------------------------

_SECURITY_ORDER = ("bearerHeader", "bearerSubprotocol", "ticket")


def _security_schemes() -> dict[str, Any]:
    limits = realtime_settings()
    subprotocol = limits.SUBPROTOCOL
    return {
        "bearerHeader": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "Native clients: `Authorization: Bearer <access token>` on the handshake "
                "request (an access token from `POST /api/auth/token/`). A handshake without "
                "`Origin` is accepted only with this method."
            ),
        },
        "bearerSubprotocol": {
            "type": "httpApiKey",
            "in": "header",
            "name": "Sec-WebSocket-Protocol",
            "description": (
                f"Browsers: offer the subprotocols `{subprotocol}` and "
                f"`{BEARER_PREFIX}<access token>`, e.g. `new WebSocket(url, "
                f'["{subprotocol}", "{BEARER_PREFIX}" + access])`. The server accepts with '
                f"`{subprotocol}` and never echoes the token. Always offer `{subprotocol}`: a "
                "browser fails a connection whose offered subprotocols were all declined."
            ),
        },
        "ticket": {
            "type": "httpApiKey",
            "in": "query",
            "name": "ticket",
            "description": (
                "Anything that can only set a URL: `POST /api/realtime/ticket/` with the "
                "access token returns `{ticket, expires_in}`; open "
                f"`{CHAT_PATH}?ticket=<ticket>` within {limits.TICKET_TTL_SECONDS} seconds. "
                "A ticket works once and stands for the access token it was bought with."
            ),
        },
    }


def _ws_binding() -> dict[str, Any]:
    subprotocol = realtime_settings().SUBPROTOCOL
    forbidden = ", ".join(f"`{name}`" for name in sorted(FORBIDDEN_QUERY_PARAMS))
    return {
        "method": "GET",
        "headers": {
            "type": "object",
            "properties": {
                "Sec-WebSocket-Protocol": {
                    "type": "string",
                    "description": (
                        f"Offer `{subprotocol}`, the protocol this document describes; "
                        f"browsers add `{BEARER_PREFIX}<access token>` to authenticate. The "
                        f"server selects `{subprotocol}` whenever it is offered."
                    ),
                    "examples": [subprotocol, f"{subprotocol}, {BEARER_PREFIX}<access token>"],
                },
                "Authorization": {
                    "type": "string",
                    "description": "`Bearer <access token>` (native clients).",
                },
                "Origin": {
                    "type": "string",
                    "description": (
                        "Sent by browsers; must be on the server's allow-list "
                        f"(WS_ALLOWED_ORIGINS), else close {int(protocol.CloseCode.FORBIDDEN)}."
                    ),
                },
            },
        },
        "query": {
            "type": "object",
            "properties": {
                "ticket": {
                    "type": "string",
                    "description": "A one-time ticket from `POST /api/realtime/ticket/`.",
                },
            },
            "description": (
                f"Never a token: a handshake with any of {forbidden} in the query is closed "
                f"with {int(protocol.CloseCode.FORBIDDEN)}, valid or not."
            ),
        },
        "bindingVersion": WS_BINDING_VERSION,
    }


def _info_description() -> str:
    limits = realtime_settings()
    order = ", ".join(f"`{name}`" for name in _SECURITY_ORDER)
    silent = [f"`{frame_type}`" for frame_type, replies in REPLIES.items() if not replies]
    unanswered = f" ({', '.join(silent)} gets no other reply)" if silent else ""
    return "\n\n".join(
        (
            "The WebSocket protocol of the chat backend: one socket per client at "
            f"`{CHAT_PATH}` carries all of its rooms. The version is the subprotocol "
            f"`{limits.SUBPROTOCOL}`. docs/protocol.md is the human contract, with the "
            "guidance this document cannot express (ordering, resume, backoff). This "
            "document is generated from realtime/protocol.py and realtime/frames.py by "
            f"`{REGENERATE}`; do not edit it by hand.",
            "**Viewpoint: the client's.** `send` operations are the frames a client sends "
            "to the server; `receive` operations are the frames it receives. A `send` "
            "operation's `reply` lists the frames that can answer it, carrying its `ref`; "
            f"`error` can answer any frame{unanswered}.",
            "Authentication: the server takes the first credential present, in the order "
            f"{order} (see the security schemes), and never tries another.",
            "Every frame is a text frame holding one JSON object with a `type`. Unknown "
            'fields are errors and types are strict (`"room": 5` is not a room); strings '
            "must be valid Unicode. A text frame over "
            f"{limits.MAX_FRAME_BYTES} bytes of UTF-8 is refused with `too_large`.",
            "Error codes (the `code` of an `error` frame) are listed in `x-error-codes`; an "
            "`error` never closes the socket, but after "
            f"{limits.MAX_PROTOCOL_ERRORS} protocol violations the server closes it with "
            f"{int(protocol.CloseCode.PROTOCOL_VIOLATION)}. Close codes are listed in "
            "`x-close-codes`; a client acts on the code's range alone "
            "(`x-close-code-ranges`): `stop` means do not reconnect, `reauthenticate` "
            "means get a fresh access token and then reconnect, `reconnect` means "
            "reconnect after a full-jitter backoff.",
        )
    )


# --- comments in the source --------------------------------------------------------------

# Linter directives are not documentation: "noqa: S105 (`refresh` with...)" keeps the rest.
_NOQA = re.compile(r"\bnoqa(?::\s*[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)?")


@cache
def _member_comments(klass: type) -> dict[str, str]:
    """Each class-body member's comment: the one trailing its line, else the block of
    comment lines right above it. Empty when the source is not available."""
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    # By line number (1-based): the comment's text, and whether it has the line to itself.
    found: dict[int, tuple[str, bool]] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            alone = not lines[row - 1][:col].strip()
            found[row] = (token.string.lstrip("#").strip(), alone)

    class_def = ast.parse(source).body[0]
    comments: dict[str, str] = {}
    for statement in getattr(class_def, "body", ()):
        # `name: type = ...` (a model's field) or `NAME = value` (an enum member).
        target: ast.expr
        if isinstance(statement, ast.AnnAssign):
            target = statement.target
        elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        row = statement.lineno
        trailing = found.get(row)
        if trailing is not None and not trailing[1]:
            text = trailing[0]
        else:
            block: list[str] = []
            above = row - 1
            while above in found and found[above][1]:
                block.insert(0, found[above][0])
                above -= 1
            text = " ".join(block)
        text = _clean(text)
        if text:
            comments[target.id] = text
    return comments


def _clean(comment: str) -> str:
    text = _NOQA.sub("", comment).strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    return text
