"""What each process counts, for Prometheus (served at /metrics by config.metrics).

Each daphne process keeps its own numbers and is scraped on its own port; Prometheus sums
them (docs/deployment.md, "Metrics"). Every label takes its values from a fixed set the
code defines (a close code, an error code, a refusal reason), never from client data, so no
client can grow the number of series. Counting costs a lock and an add: small next to the
frame it counts.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from realtime.protocol import CloseCode, ErrorCode

T = TypeVar("T")

SOCKETS_OPEN = Gauge("chat_sockets_open", "Chat sockets open on this process.")
HANDSHAKES = Counter(
    "chat_handshakes",
    "WebSocket handshakes by outcome: accepted, or the reason they were refused.",
    ["outcome"],
)
FRAMES_RECEIVED = Counter("chat_frames_received", "Frames received from clients.")
FRAMES_SENT = Counter("chat_frames_sent", "Frames sent to clients (replies and deliveries).")
FRAMES_WRITTEN_DIRECTLY = Counter(
    "chat_frames_written_directly",
    "Of chat_frames_sent, those the channel layer handed straight to daphne (realtime.writer).",
)
ERROR_FRAMES = Counter("chat_error_frames", "`error` frames sent, by code.", ["code"])
CLOSES = Counter("chat_closes", "Sockets the server closed, by close code.", ["code"])
DISCONNECTS = Counter(
    "chat_disconnects", "Sockets that ended, by the close code daphne reported.", ["code"]
)
RATE_LIMITED = Counter(
    "chat_rate_limited", "Frames over a socket's rate: dropped, or the socket closed.", ["action"]
)
LAYER_SECONDS = Histogram(
    "chat_channel_layer_seconds",
    "Time a channel-layer operation took, by operation.",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LAYER_ERRORS = Counter(
    "chat_channel_layer_errors",
    "Channel-layer failures by operation (receive: the subscription connection was lost).",
    ["operation"],
)
FANOUT_SECONDS = Histogram(
    "chat_fanout_seconds",
    "From a message's publication by one process to its arrival at another (or the same)"
    " process, which hands it to its sockets at once.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

_CLOSE_CODES = frozenset(int(code) for code in CloseCode)
_ERROR_CODES = frozenset(code.value for code in ErrorCode)


def code_label(code: int | None) -> str:
    """A close code as a label: one of the codes docs/protocol.md lists, else "other"."""
    if code is None:
        return "none"
    return str(int(code)) if int(code) in _CLOSE_CODES else "other"


def count_error_frame(code: str) -> None:
    ERROR_FRAMES.labels(code=code if code in _ERROR_CODES else "other").inc()


def count_close(code: int) -> None:
    CLOSES.labels(code=code_label(code)).inc()


def count_disconnect(code: int | None) -> None:
    DISCONNECTS.labels(code=code_label(code)).inc()


def count_handshake(outcome: str) -> None:
    HANDSHAKES.labels(outcome=outcome).inc()


async def timed_layer_call(operation: str, call: Callable[[], Awaitable[T]]) -> T:
    """Await a channel-layer call, timing it and counting its failure."""
    started = time.perf_counter()
    try:
        return await call()
    except Exception:
        LAYER_ERRORS.labels(operation=operation).inc()
        raise
    finally:
        LAYER_SECONDS.labels(operation=operation).observe(time.perf_counter() - started)


def observe_fanout(event: dict[str, Any]) -> None:
    """A group event arrived at this process: how long since it was published."""
    published = event.get("published")
    if isinstance(published, float):
        FANOUT_SECONDS.observe(max(0.0, time.time() - published))
