"""Percentiles, medians and the number formats of the report."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

# The multiplication sign of the ratios ("0.53x PubSub"), spelled out: ruff flags the literal.
X = "\N{MULTIPLICATION SIGN}"


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank q-quantile (q in 0..1); NaN for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float | None]) -> float | None:
    """The median of the values measured (None and NaN are rounds that measured nothing)."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(present) if present else None


def number(value: float | None, digits: int = 0) -> str:
    """1234.5 -> "1,235"; small values keep `digits` decimals; None -> "n/a"."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def ms(seconds: float | None) -> str:
    """Seconds as milliseconds, with one decimal below 100 ms."""
    if seconds is None or math.isnan(seconds):
        return "n/a"
    value = seconds * 1000
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0 or math.isnan(value) or math.isnan(base):
        return None
    return value / base


def ms_unit(seconds: float | None) -> str:
    """As ms(), with the unit: "12.5 ms", or "n/a"."""
    text = ms(seconds)
    return text if text == "n/a" else f"{text} ms"
