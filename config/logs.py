"""Logging building blocks: a redaction filter, a JSON-lines formatter and the LOGGING dict.

The redaction filter sits on every handler, so no record reaches a console or file with
something that looks like a JWT, a password or a credential in a query string, whichever
logger emitted it (ours, Django's, daphne's). It rewrites the message and every extra
attribute (a request object becomes "METHOD path", without its query string), and escapes
control characters in them, so a client-chosen path, origin or ref cannot forge a log line.
Code must still never log secrets: this is the net under the rope, not the rope.
docs/security.md lists the tests that prove it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REDACTED = "[REDACTED]"

# A JWS compact token: base64url(JSON header starting '{"') . payload . signature.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# `Authorization: Bearer <anything>` in headers that end up in a message.
_BEARER = re.compile(r"(?i)\b(bearer)(\s+|\.)[^\s,;'\"]+")
# Names whose values are secrets (a pattern of names, not a password: hence the noqa).
_SECRET_NAMES = (
    r"password\d?|new_password\d?|old_password|passwd|secret|refresh|access|token|ticket"  # noqa: S105
)
# A record attribute (from `extra=` or a message's key=%s) whose value is a secret.
_SECRET_KEY = re.compile(r"(?i)(?:" + _SECRET_NAMES + r"|authorization)")
# password=..., "password": "...", new_password2='...'
_SECRET_FIELD = re.compile(
    r"""(?ix)
    (["']?\b(?:"""
    + _SECRET_NAMES
    + r""")
    ["']?\s*[:=]\s*)
    # Not a value already redacted (by _JWT, or by another handler's filter on the same
    # record): matching "[REDACTED" again would leave a stray "]" on every pass.
    (?!\[REDACTED\](?:[\s,&}\]]|$))
    ("[^"]*"|'[^']*'|[^\s,&}]+)
    """
)


def redact(text: str) -> str:
    """Return `text` with JWTs, bearer credentials and secret-looking fields replaced."""
    text = _JWT.sub(REDACTED, text)
    text = _BEARER.sub(rf"\1\2{REDACTED}", text)
    return _SECRET_FIELD.sub(rf"\1{REDACTED}", text)


# Everything a terminal or a line-based reader may treat as a line break or a command: C0
# (\n \r \t included), DEL, C1 (NEL, CSI...) and the Unicode line and paragraph separators.
_CONTROL_ESCAPES: dict[int, str] = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))},
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}
# Tracebacks keep their line breaks: a record's traceback is expected to span lines.
_TRACEBACK_ESCAPES = {code: text for code, text in _CONTROL_ESCAPES.items() if code != ord("\n")}


def escape_controls(text: str) -> str:
    """Return `text` on one line: control characters written as \\n, \\x1b, \\u2028...

    Backslashes are left alone, so escaping twice (one filter per handler) changes nothing.
    """
    return text.translate(_CONTROL_ESCAPES)


def sanitize(text: str) -> str:
    """Redact `text`, then put it on one line. In that order: the bearer pattern reads the
    whitespace (a tab, a line break) that escaping would turn into a backslash sequence."""
    return escape_controls(redact(text))


def _sanitize_traceback(text: str) -> str:
    return redact(text).translate(_TRACEBACK_ESCAPES)


def render_extra(value: object) -> object:
    """A record attribute as it may be written: JSON scalars kept, anything else a sanitized
    string. A request is "METHOD path": its query string may carry a ticket or a token, and
    its repr() is the full URL. Containers are rendered whole through str(), so a value
    keeps the field name ("password") the redaction patterns look for next to it."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return sanitize(value)
    # Imported here: settings import this module before Django is set up.
    from django.http import HttpRequest

    if isinstance(value, HttpRequest):
        return sanitize(f"{value.method} {value.path}")
    try:
        text = str(value)
    except Exception:  # a broken __str__ must not lose the record
        text = f"<unprintable {type(value).__name__}>"
    return sanitize(text)


# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def extra_keys(record: logging.LogRecord) -> list[str]:
    """The attributes `extra=` (or a library) added to the record: what formatters write
    besides the standard fields. Private (underscore) attributes are neither."""
    return [k for k in vars(record) if k not in _STANDARD_ATTRS and not k.startswith("_")]


# One %-conversion of a logging format string, with the `key=` written just before it, if
# any: "ws refused reason=%s addr=%s" -> ("reason", "s"), ("addr", "s"). `%%` takes no argument.
_CONVERSION = re.compile(
    r"(?:\b([a-z_][a-z0-9_]*)=)?%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[a-zA-Z%]"
)


@functools.lru_cache(maxsize=1024)
def _message_fields(fmt: str) -> tuple[str | None, ...] | None:
    """The key of each argument of a format string (None for an unnamed one); None when the
    string cannot be read that way (a `*` width takes an argument of its own)."""
    keys: list[str | None] = []
    for match in _CONVERSION.finditer(fmt):
        text = match.group(0)
        if text.endswith("%%"):
            continue
        if "*" in text or "%(" in text:
            return None
        keys.append(match.group(1))
    return tuple(keys)


class MessageFieldsFilter(logging.Filter):
    """Gives a record its context as attributes: `ws refused reason=%s user=%s` logged with
    ("busy", 7) gets record.reason = "busy" and record.user = 7, which the JSON formatter
    writes as fields of their own beside the message. The message text is unchanged (the
    text format reads the same), and one convention serves both: every log call names its
    values `key=%s`. An attribute the record already has (from `extra=`) is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not args or not isinstance(record.msg, str) or not isinstance(args, tuple):
            return True
        keys = _message_fields(record.msg)
        if keys is None or len(keys) != len(args):
            return True
        for key, value in zip(keys, args, strict=True):
            if key is not None and key not in _STANDARD_ATTRS and not hasattr(record, key):
                setattr(record, key, value)
        return True


class RedactSecretsFilter(logging.Filter):
    """Rewrites each record, never drops one: the message and every extra redacted and on
    one line, the traceback and stack redacted (multi-line, other control characters
    escaped). Applying it again, as the next handler does, changes nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call must still be logged, unformatted
            message = str(record.msg)
        record.msg = sanitize(message)
        record.args = ()
        # Before any formatter sees them: JSON encoding would escape the quotes the redaction
        # patterns match, and default=str would write a request with its query string.
        for key in extra_keys(record):
            if _SECRET_KEY.fullmatch(key):
                setattr(record, key, REDACTED)
            else:
                setattr(record, key, render_extra(getattr(record, key)))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _sanitize_traceback(record.exc_text)
        if record.stack_info:
            record.stack_info = _sanitize_traceback(record.stack_info)
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extras, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in extra_keys(record):
            entry[key] = getattr(record, key)
        if record.exc_info or record.exc_text:
            # exc_info is set here whenever exc_text is empty; mypy cannot follow the `or`.
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, default=str)


REALTIME_LOGGERS = ("realtime.connection", "realtime.protocol", "realtime.security")
# Also in the file: daphne's server events, and channels-redis, which reports the messages it
# drops for a full queue at INFO and nowhere else.
FILE_LOGGERS = (*REALTIME_LOGGERS, "daphne", "channels_redis")


def build_logging(
    *,
    level: str,
    fmt: str,
    realtime_file: Path,
    file_max_bytes: int,
    file_backups: int,
) -> dict[str, Any]:
    """Return the LOGGING dict: console for everything, plus a rotating realtime file."""
    if fmt not in {"text", "json"}:
        raise ValueError(f"LOG_FORMAT must be 'text' or 'json', not {fmt!r}")
    realtime_file.parent.mkdir(parents=True, exist_ok=True)
    filters = ["message_fields", "redact_secrets"]
    handler_common = {"filters": filters, "formatter": fmt}
    return {
        "version": 1,
        # daphne's and Django's own loggers keep working; we only add handlers and levels.
        "disable_existing_loggers": False,
        # In this order: fields are read from the arguments that redaction then folds away.
        "filters": {
            "message_fields": {"()": "config.logs.MessageFieldsFilter"},
            "redact_secrets": {"()": "config.logs.RedactSecretsFilter"},
        },
        "formatters": {
            "text": {"format": "%(asctime)s %(levelname)-7s %(name)s %(message)s"},
            "json": {"()": "config.logs.JsonLinesFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", **handler_common},
            "realtime_file": {
                "class": "logging.handlers.RotatingFileHandler",
                "filename": str(realtime_file),
                "maxBytes": file_max_bytes,
                "backupCount": file_backups,
                "encoding": "utf-8",
                # The file is for machines and on-call humans alike: always JSON lines.
                "filters": filters,
                "formatter": "json",
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            **{
                name: {
                    "handlers": ["console", "realtime_file"],
                    "level": "INFO",
                    "propagate": False,
                }
                for name in FILE_LOGGERS
            },
            # Server errors and failed requests land in the same file as the realtime events.
            "django.request": {
                "handlers": ["console", "realtime_file"],
                "level": "WARNING",
                "propagate": False,
            },
            # Django's own records reach the console (and the tracker, config.error_tracking),
            # never its default `mail_admins` handler: an error email carries the request's
            # headers, credentials included, past every filter here.
            "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "django.channels.server": {
                "handlers": ["console"],
                "level": "INFO",
                "propagate": False,
            },
        },
    }
