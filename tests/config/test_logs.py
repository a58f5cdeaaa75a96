"""The logging net: secrets redacted on every handler, JSON lines that parse, others kept."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from daphne.access import AccessLogGenerator
from django.core.handlers.asgi import ASGIRequest
from django.test import RequestFactory

from config.logs import (
    REDACTED,
    JsonLinesFormatter,
    MessageFieldsFilter,
    RedactSecretsFilter,
    build_logging,
    redact,
)
from realtime.accesslog import QuerylessAccessLogGenerator

REPO = Path(__file__).resolve().parent.parent.parent
# Shaped like a real HS256 token: three base64url parts, the first two JSON objects.
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwidXNlcl9pZCI6IjQyIn0"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)


def record(msg, *args, exc_info=None, name="realtime.security", **extra):
    rec = logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, exc_info)
    rec.__dict__.update(extra)
    return rec


def filtered(rec: logging.LogRecord) -> logging.LogRecord:
    assert RedactSecretsFilter().filter(rec) is True
    return rec


def raised(exc: BaseException):
    try:
        raise exc
    except type(exc):
        return sys.exc_info()


# --- RedactSecretsFilter --------------------------------------------------------------------


def test_jwt_in_the_message_is_redacted():
    rec = filtered(record(f"ws connect token={JWT} from 10.0.0.1"))

    assert JWT not in rec.getMessage()
    assert JWT.split(".")[2] not in rec.getMessage()
    assert rec.getMessage().startswith("ws connect token=")
    assert "from 10.0.0.1" in rec.getMessage()
    assert REDACTED in rec.getMessage()


def test_bare_jwt_is_redacted_without_a_field_name():
    rec = filtered(record(f"got {JWT} in a frame"))

    assert rec.getMessage() == f"got {REDACTED} in a frame"


def test_jwt_in_percent_args_is_redacted():
    rec = filtered(record("handshake header=%s user=%s", JWT, "alice"))

    assert JWT not in rec.getMessage()
    assert "user=alice" in rec.getMessage()
    # Formatting happened once, here; a later handler must not apply the args again.
    assert rec.args == ()


def test_jwt_in_a_traceback_is_redacted():
    rec = filtered(record("decode failed", exc_info=raised(ValueError(f"bad token {JWT}"))))

    assert JWT not in rec.exc_text
    assert "ValueError: bad token" in rec.exc_text
    assert "Traceback (most recent call last)" in rec.exc_text
    formatted = logging.Formatter().format(rec)
    assert JWT not in formatted
    assert "ValueError" in formatted


def test_secrets_in_stack_info_are_redacted():
    rec = record("where")
    rec.stack_info = f'  File "x.py", line 1, in f\n    check(password="hunter2-long", t={JWT})'

    filtered(rec)

    assert "hunter2-long" not in rec.stack_info
    assert JWT not in rec.stack_info


@pytest.mark.parametrize(
    ("message", "secret", "kept"),
    [
        ("Authorization: Bearer abc123.opaque-token", "abc123.opaque-token", "Bearer"),
        ("auth bearer s3cr3t-value, next", "s3cr3t-value", ", next"),
        ("login password=hunter2-long user=alice", "hunter2-long", "user=alice"),
        ('body {"username": "alice", "password": "hunter 2 long"}', "hunter 2 long", "alice"),
        ("body {'new_password2': 'pa55-w0rd'}", "pa55-w0rd", "new_password2"),
        (
            "GET /ws/chat/?token=opaque-t0ken&ticket=t1ck3t-value&room=lobby",
            "opaque-t0ken",
            "room=lobby",
        ),
        ("GET /ws/chat/?token=opaque-t0ken&ticket=t1ck3t-value", "t1ck3t-value", "/ws/chat/?"),
        ('{"refresh": "r3fresh-opaque"}', "r3fresh-opaque", "refresh"),
        ("secret: do-not-print-me", "do-not-print-me", "secret"),
        ("login password=ab]cd-rest user=alice", "cd-rest", "user=alice"),
    ],
    ids=[
        "bearer-header",
        "bearer-lowercase",
        "password-equals",
        "password-json",
        "new-password-quoted",
        "query-token",
        "query-ticket",
        "refresh-json",
        "secret-colon",
        "password-with-bracket",
    ],
)
def test_credentials_are_redacted(message, secret, kept):
    rec = filtered(record(message))

    assert secret not in rec.getMessage()
    assert kept in rec.getMessage()
    assert REDACTED in rec.getMessage()


@pytest.mark.parametrize(
    "message",
    [
        "user alice joined room lobby (3 members)",
        "api authentication failed code=invalid_credentials path=/api/auth/token/ addr=1.2.3.4",
        "GET /api/rooms/?before=120 200",
        "closing socket code=4008 reason=rate_limited",
        "",
    ],
)
def test_an_innocent_message_is_left_unchanged(message):
    rec = filtered(record(message))

    assert rec.getMessage() == message
    assert redact(message) == message


@pytest.mark.parametrize(
    "message",
    [
        f"token={JWT}",
        f'{{"access": "{JWT}", "refresh": "{JWT}"}}',
        f"Authorization: Bearer {JWT}",
        "password=hunter2-long&ticket=abc",
    ],
)
def test_redaction_is_stable_when_every_handler_applies_it(message):
    once = redact(message)

    assert redact(once) == once
    assert redact(redact(once)) == once
    assert "]]" not in once


def test_a_malformed_call_is_still_logged():
    rec = filtered(record("two args %s %s", "only-one"))

    assert rec.getMessage() == "two args %s %s"


def test_filter_never_drops_a_record():
    assert RedactSecretsFilter().filter(record(f"token={JWT}")) is True
    assert RedactSecretsFilter().filter(record("nothing secret")) is True


# --- Extras: every attribute a record carries -----------------------------------------------


def asgi_request(path: str, query: bytes) -> ASGIRequest:
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": []}
    return ASGIRequest(scope, io.BytesIO())


@pytest.mark.parametrize(
    "make_request",
    [
        lambda: asgi_request("/ws/chat/", b"ticket=t1ck3t-value&note=n0te-value"),
        lambda: RequestFactory().get(
            "/ws/chat/", {"ticket": "t1ck3t-value", "note": "n0te-value"}
        ),
    ],
    ids=["asgi", "wsgi"],
)
def test_a_request_extra_is_logged_as_method_and_path_without_its_query(make_request):
    # What django.request attaches to every 4xx/5xx record.
    rec = filtered(record("Not Found: %s", "/ws/chat/", request=make_request(), status_code=404))

    assert rec.request == "GET /ws/chat/"
    line = JsonLinesFormatter().format(rec)
    assert "t1ck3t-value" not in line
    assert "n0te-value" not in line
    assert json.loads(line)["request"] == "GET /ws/chat/"
    assert json.loads(line)["status_code"] == 404


def test_string_extras_are_redacted_before_json_encoding():
    # JSON-encoded, '"password": "..."' reads '\"password\": \"...\"', which the field
    # pattern no longer matches: redaction has to come before the encoding.
    rec = filtered(
        record(
            "login",
            body='{"username": "alice", "password": "hunter2-long"}',
            header=f"Bearer {JWT}",
            url="/ws/chat/?ticket=t1ck3t-value",
        )
    )

    line = JsonLinesFormatter().format(rec)
    for secret in ("hunter2-long", JWT, "t1ck3t-value"):
        assert secret not in line
    entry = json.loads(line)
    assert '"username": "alice"' in entry["body"]
    assert entry["header"] == f"Bearer {REDACTED}"


class Credentialed:
    def __str__(self) -> str:
        return f"<Client token={JWT} password=hunter2-long>"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_other_extras_are_stringified_then_redacted_and_plain_values_kept():
    rec = filtered(
        record(
            "event",
            client=Credentialed(),
            form={"username": "alice", "password": "hunter2-long"},
            payload=b"token=opaque-t0ken",
            user_id=7,
            ratio=0.5,
            admin=False,
            room=None,
            broken=Unprintable(),
        )
    )

    entry = json.loads(JsonLinesFormatter().format(rec))
    for secret in (JWT, "hunter2-long", "opaque-t0ken"):
        assert secret not in json.dumps(entry)
    assert entry["client"].startswith(f"<Client token={REDACTED} password={REDACTED}")
    assert "alice" in entry["form"]
    # What JSON holds as is stays typed.
    assert [entry[key] for key in ("user_id", "ratio", "admin", "room")] == [7, 0.5, False, None]
    assert "Unprintable" in entry["broken"]


# --- Control characters: one record, one line ------------------------------------------------

CONTROLS = {
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\x00": "\\x00",
    "\x0b": "\\x0b",
    "\x0c": "\\x0c",
    "\x1b": "\\x1b",
    "\x1e": "\\x1e",
    "\x7f": "\\x7f",
    "\x85": "\\x85",
    "\x9b": "\\x9b",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
FORGED = "2024-01-01 00:00:00,000 CRITICAL realtime.security forged"
TEXT = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s")


@pytest.mark.parametrize(("control", "escaped"), CONTROLS.items(), ids=[repr(c) for c in CONTROLS])
def test_control_characters_in_a_message_are_escaped(control, escaped):
    rec = filtered(record("ws refused path=%s origin=%r", f"/ws/{control}{FORGED}", "o"))

    message = rec.getMessage()
    assert control not in message
    assert f"/ws/{escaped}{FORGED}" in message
    assert len(TEXT.format(rec).splitlines()) == 1


@pytest.mark.parametrize(("control", "escaped"), CONTROLS.items(), ids=[repr(c) for c in CONTROLS])
def test_control_characters_in_extras_are_escaped(control, escaped):
    rec = filtered(
        record("ws error", ref=f"r{control}{FORGED}", request=asgi_request(f"/x{control}y", b""))
    )

    assert rec.ref == f"r{escaped}{FORGED}"
    assert rec.request == f"GET /x{escaped}y"


def test_escaping_and_redaction_are_stable_when_every_handler_applies_them():
    rec = record("auth bearer\t%s path=%s", "s3cr3t-value", "/a\nb", ref="x\r\u2028y")

    first = filtered(rec).getMessage(), rec.ref
    second = filtered(rec).getMessage(), rec.ref

    assert first == second
    assert first == (f"auth bearer\\t{REDACTED} path=/a\\nb", "x\\r\\u2028y")


def test_a_traceback_stays_multiline_but_is_redacted_and_escaped():
    error = ValueError(f"bad path /x\r\x1b[2K{FORGED} token={JWT}")
    rec = filtered(record("failed", exc_info=raised(error)))

    assert "Traceback (most recent call last)" in rec.exc_text
    assert len(rec.exc_text.splitlines()) > 2
    assert JWT not in rec.exc_text
    assert "\r" not in rec.exc_text
    assert "\x1b" not in rec.exc_text
    assert "\\r\\x1b[2K" in rec.exc_text


# --- daphne's access log (realtime.accesslog) ------------------------------------------------


def access_line(protocol: str, action: str, **details) -> str:
    stream = io.StringIO()
    QuerylessAccessLogGenerator(stream)(protocol, action, details)
    return stream.getvalue()


def test_access_log_writes_http_paths_without_query_strings():
    line = access_line(
        "http",
        "complete",
        path="/ws/chat/?ticket=t1ck3t-value&note=n0te-value",
        status=404,
        method="GET",
        client="127.0.0.1:5000",
        time_taken=0.01,
        size=23,
    )

    assert line.startswith("127.0.0.1:5000 - - [")
    assert line.endswith('] "GET /ws/chat/" 404 23\n')
    assert "t1ck3t-value" not in line
    assert "n0te-value" not in line


def test_access_log_escapes_control_characters_and_redacts_paths():
    line = access_line(
        "websocket",
        "connected",
        path=f"/ws/\r\n{FORGED}/{JWT}",
        client="127.0.0.1:5000\x1b[2K",
    )

    assert line.count("\n") == 1
    assert line.endswith("\n")
    assert "\r" not in line
    assert "\x1b" not in line
    assert JWT not in line
    assert f'"WSCONNECT /ws/\\r\\n{FORGED}/{REDACTED}" - -' in line


def test_access_log_keeps_what_stock_daphne_writes_otherwise():
    details = {"path": "/api/rooms/", "status": 200, "method": "GET", "client": None, "size": 2}
    stock, ours = io.StringIO(), io.StringIO()

    AccessLogGenerator(stock)("http", "complete", details)
    QuerylessAccessLogGenerator(ours)("http", "complete", details)
    QuerylessAccessLogGenerator(ours)("http", "unknown-action", details)

    # Same line (the timestamps may differ by a second).
    assert ours.getvalue().split("]", 1)[1] == stock.getvalue().split("]", 1)[1]
    assert ours.getvalue().startswith("None - - [")


# --- JsonLinesFormatter ---------------------------------------------------------------------


def test_json_formatter_emits_one_parseable_object_with_extras():
    rec = record("user %s joined", "alice", name="realtime.connection", room="lobby", user_id=7)

    line = JsonLinesFormatter().format(rec)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "realtime.connection"
    assert entry["message"] == "user alice joined"
    assert entry["room"] == "lobby"
    assert entry["user_id"] == 7
    assert entry["time"].endswith("+00:00")
    assert "T" in entry["time"]
    # Standard LogRecord attributes are not repeated as noise.
    for attribute in ("args", "msg", "levelno", "pathname", "exc_info", "thread"):
        assert attribute not in entry


def test_json_formatter_includes_the_traceback_on_one_line():
    rec = record("failed", exc_info=raised(RuntimeError("boom")))

    line = JsonLinesFormatter().format(rec)

    assert "\n" not in line
    entry = json.loads(line)
    assert "RuntimeError: boom" in entry["exception"]


def test_json_formatter_stringifies_values_json_cannot_hold():
    rec = record("path", where=Path("/tmp/x"))  # noqa: S108

    assert json.loads(JsonLinesFormatter().format(rec))["where"] == "/tmp/x"  # noqa: S108


def test_json_formatter_after_redaction_carries_no_secret():
    rec = filtered(record("token=%s", JWT, exc_info=raised(ValueError(JWT))))

    line = JsonLinesFormatter().format(rec)

    assert JWT not in line
    assert json.loads(line)["message"] == f"token={REDACTED}"


# --- build_logging --------------------------------------------------------------------------


def build(tmp_path, fmt="text"):
    return build_logging(
        level="INFO",
        fmt=fmt,
        realtime_file=tmp_path / "logs" / "realtime.log",
        file_max_bytes=1024,
        file_backups=2,
    )


def test_build_logging_keeps_existing_loggers_and_filters_every_handler(tmp_path):
    config = build(tmp_path)

    assert config["disable_existing_loggers"] is False
    assert config["handlers"]
    for name, handler in config["handlers"].items():
        assert "redact_secrets" in handler["filters"], name
    assert config["filters"]["redact_secrets"]["()"] == "config.logs.RedactSecretsFilter"
    assert (tmp_path / "logs").is_dir()


@pytest.mark.parametrize(
    "logger",
    ["realtime.connection", "realtime.protocol", "realtime.security", "daphne", "channels_redis"],
)
def test_build_logging_sends_socket_and_layer_events_to_the_file(tmp_path, logger):
    # channels-redis reports messages dropped for a full queue at INFO, and only there.
    config = build(tmp_path)["loggers"][logger]

    assert "realtime_file" in config["handlers"]
    assert config["level"] == "INFO"


def test_build_logging_formats(tmp_path):
    text = build(tmp_path, "text")
    as_json = build(tmp_path, "json")

    assert text["handlers"]["console"]["formatter"] == "text"
    assert as_json["handlers"]["console"]["formatter"] == "json"
    assert as_json["formatters"]["json"]["()"] == "config.logs.JsonLinesFormatter"
    # The file is always JSON lines, whatever the console uses.
    assert text["handlers"]["realtime_file"]["formatter"] == "json"
    assert text["handlers"]["realtime_file"]["maxBytes"] == 1024
    assert text["handlers"]["realtime_file"]["backupCount"] == 2


def test_build_logging_refuses_an_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="LOG_FORMAT must be 'text' or 'json'"):
        build(tmp_path, "xml")


# dictConfig replaces process-wide state, so it is applied in a fresh interpreter.
APPLY_CONFIG = """
import json, logging, logging.config, pathlib, sys
from config.logs import build_logging, JsonLinesFormatter, RedactSecretsFilter

tmp = pathlib.Path(sys.argv[1])
existing = [logging.getLogger(name) for name in ("daphne.server", "django.security.csrf",
                                                 "twisted")]
logging.config.dictConfig(build_logging(level="INFO", fmt="json", realtime_file=tmp / "rt.log",
                                        file_max_bytes=10000, file_backups=1))
handlers = {h for name in ("", "realtime.security", "daphne", "django.request")
            for h in logging.getLogger(name).handlers}
token = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiNDIifQ.c2lnbmF0dXJlLXZhbHVl"
logging.getLogger("realtime.security").warning("refused token=%s", token)
logging.getLogger("daphne.server").info("listening %s", token)
for handler in handlers:
    handler.flush()
print(json.dumps({
    "disabled": [logger.name for logger in existing if logger.disabled],
    "all_redact": all(any(isinstance(f, RedactSecretsFilter) for f in h.filters)
                      for h in handlers),
    "console_json": isinstance(logging.getLogger().handlers[0].formatter, JsonLinesFormatter),
    "file_lines": (tmp / "rt.log").read_text().splitlines(),
}))
"""


def test_applied_config_keeps_daphne_and_redacts_on_every_handler(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", APPLY_CONFIG, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert state["disabled"] == []
    assert state["all_redact"] is True
    assert state["console_json"] is True
    entries = [json.loads(line) for line in state["file_lines"]]
    assert [(e["logger"], e["message"]) for e in entries] == [
        ("realtime.security", f"refused token={REDACTED}"),
        ("daphne.server", f"listening {REDACTED}"),
    ]
    # The console got the same records, redacted and as JSON lines.
    assert "eyJ1c2VyX2lkIjoiNDIifQ" not in result.stderr
    console = [json.loads(line) for line in result.stderr.splitlines()]
    assert {e["logger"] for e in console} == {"realtime.security", "daphne.server"}


# --- MessageFieldsFilter ----------------------------------------------------------------------


def fields_then_redacted(rec: logging.LogRecord) -> dict:
    assert MessageFieldsFilter().filter(rec) is True
    filtered(rec)
    return json.loads(JsonLinesFormatter().format(rec))


def test_each_key_of_the_message_becomes_a_field_of_its_json_line():
    line = fields_then_redacted(
        record(
            "ws disconnect user=%s code=%s duration=%.1fs rooms=%d conn=%s", 7, 4400, 1.5, 2, "c1"
        )
    )

    assert line["message"] == "ws disconnect user=7 code=4400 duration=1.5s rooms=2 conn=c1"
    assert (line["user"], line["code"], line["rooms"], line["conn"]) == (7, 4400, 2, "c1")
    assert line["duration"] == 1.5


def test_a_field_whose_name_is_a_secret_is_redacted_whatever_its_value():
    line = fields_then_redacted(
        record("login password=%s ticket=%s user=%s", "hunter2", "t1ck3t", "alice")
    )

    assert (line["password"], line["ticket"], line["user"]) == (REDACTED, REDACTED, "alice")
    assert "hunter2" not in json.dumps(line)
    assert "t1ck3t" not in json.dumps(line)


def test_an_extra_with_a_secret_name_is_redacted_too():
    line = fields_then_redacted(record("refresh failed", authorization="Bearer abc.def"))

    assert line["authorization"] == REDACTED


def test_a_field_value_is_escaped_and_redacted_like_the_message():
    line = fields_then_redacted(record("ws refused origin=%r ref=%s", "evil\nFORGED", JWT))

    assert line["origin"] == "evil\\nFORGED"
    assert line["ref"] == REDACTED


@pytest.mark.parametrize(
    ("message", "args"),
    [
        ("100%% done user=%s", ("alice",)),
        ("%s joined room=%s", ("alice", "lobby")),
        ("width %*d user=%s", (3, 4, "alice")),
        ("mapping %(user)s", ({"user": "alice"},)),
        ("too few user=%s code=%s", ("alice",)),
    ],
    ids=["percent-literal", "unnamed-first", "star-width", "mapping", "mismatch"],
)
def test_messages_that_cannot_be_read_as_fields_are_logged_unchanged(message, args):
    rec = record(message, *args)
    text = rec.getMessage() if message != "too few user=%s code=%s" else None
    MessageFieldsFilter().filter(rec)

    if message == "100%% done user=%s":
        assert rec.user == "alice"
    elif message == "%s joined room=%s":
        assert rec.room == "lobby"
        assert not hasattr(rec, "s")
    else:
        assert not hasattr(rec, "user")
    if text is not None:
        assert rec.getMessage() == text


def test_an_attribute_given_with_extra_wins_over_the_message():
    rec = record("ws connect user=%s", 7, user="explicit")
    MessageFieldsFilter().filter(rec)

    assert rec.user == "explicit"


def test_standard_record_attributes_are_never_overwritten():
    rec = record("moved name=%s module=%s", "evil", "evil")
    MessageFieldsFilter().filter(rec)

    assert rec.name == "realtime.security"
    assert rec.module != "evil"
