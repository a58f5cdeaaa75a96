"""Per-connection frame rate limit: a token bucket plus a strike count.

Every client frame costs one token, checked before the frame is even parsed, so a flood
costs the server a counter update per frame. A frame without a token is dropped with a
`rate_limited` error and counts a strike; an accepted frame clears the strikes. A client
that keeps sending into an empty bucket (RATE_STRIKES_BEFORE_CLOSE strikes in a row) is
disconnected with 4008. The bucket is per socket and in memory: it needs no Redis round trip
on the hot path, and a per-user cap across sockets belongs to the connection limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    ALLOW = "allow"
    DROP = "drop"
    CLOSE = "close"


@dataclass(slots=True)
class FrameRateLimiter:
    burst: int
    per_second: float
    strikes_before_close: int
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    strikes: int = field(init=False, default=0)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.updated = self.clock()

    def check(self) -> Verdict:
        """Spend a token for one frame and say whether to handle, drop it, or close."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.strikes = 0
            return Verdict.ALLOW
        self.strikes += 1
        return Verdict.CLOSE if self.strikes >= self.strikes_before_close else Verdict.DROP
