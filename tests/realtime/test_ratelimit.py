"""FrameRateLimiter (realtime.ratelimit) against a clock the test moves by hand."""

from __future__ import annotations

import time

import pytest

from realtime.ratelimit import FrameRateLimiter, Verdict


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def limiter(clock: FakeClock, *, burst=3, per_second=2.0, strikes=3) -> FrameRateLimiter:
    return FrameRateLimiter(
        burst=burst, per_second=per_second, strikes_before_close=strikes, clock=clock
    )


def test_a_full_burst_is_allowed_then_frames_are_dropped(clock):
    bucket = limiter(clock, burst=3)
    assert [bucket.check() for _ in range(3)] == [Verdict.ALLOW] * 3
    assert bucket.check() is Verdict.DROP


def test_tokens_refill_at_the_configured_rate(clock):
    bucket = limiter(clock, burst=2, per_second=2.0, strikes=100)
    bucket.check()
    bucket.check()
    assert bucket.check() is Verdict.DROP

    clock.advance(0.25)  # half a token
    assert bucket.check() is Verdict.DROP
    clock.advance(0.25)  # the two halves make one token
    assert bucket.check() is Verdict.ALLOW
    assert bucket.check() is Verdict.DROP


def test_idle_time_never_fills_beyond_the_burst(clock):
    bucket = limiter(clock, burst=3, per_second=2.0, strikes=100)
    clock.advance(3600)
    assert [bucket.check() for _ in range(4)] == [Verdict.ALLOW] * 3 + [Verdict.DROP]


def test_dropped_frames_spend_no_tokens(clock):
    bucket = limiter(clock, burst=1, per_second=1.0, strikes=100)
    assert bucket.check() is Verdict.ALLOW
    for _ in range(10):
        assert bucket.check() is Verdict.DROP
    clock.advance(1.0)
    assert bucket.check() is Verdict.ALLOW


def test_consecutive_strikes_close(clock):
    bucket = limiter(clock, burst=1, strikes=3)
    assert bucket.check() is Verdict.ALLOW
    assert bucket.check() is Verdict.DROP
    assert bucket.check() is Verdict.DROP
    assert bucket.check() is Verdict.CLOSE


def test_one_strike_closes_when_so_configured(clock):
    bucket = limiter(clock, burst=1, strikes=1)
    assert bucket.check() is Verdict.ALLOW
    assert bucket.check() is Verdict.CLOSE


def test_an_allowed_frame_resets_the_strikes(clock):
    bucket = limiter(clock, burst=1, per_second=1.0, strikes=3)
    assert bucket.check() is Verdict.ALLOW
    assert bucket.check() is Verdict.DROP
    assert bucket.check() is Verdict.DROP
    assert bucket.strikes == 2

    clock.advance(1.0)
    assert bucket.check() is Verdict.ALLOW
    assert bucket.strikes == 0
    # Two more strikes are needed again before a third closes.
    assert bucket.check() is Verdict.DROP
    assert bucket.check() is Verdict.DROP
    assert bucket.check() is Verdict.CLOSE


def test_slow_steady_client_is_never_limited(clock):
    bucket = limiter(clock, burst=2, per_second=5.0, strikes=1)
    for _ in range(1000):
        assert bucket.check() is Verdict.ALLOW
        clock.advance(0.2)


def test_the_default_clock_is_monotonic():
    bucket = FrameRateLimiter(burst=1, per_second=1.0, strikes_before_close=1)
    assert bucket.clock is time.monotonic
    assert bucket.check() is Verdict.ALLOW
