"""From per-round results to the comparison: medians, ratios to the peers, targets, Markdown.

Every figure is the median of the rounds that measured it; the per-round values are kept
for the Markdown's details. Ratios are taken between medians of one run: the project
against the tutorial on the PubSub layer (the stronger tutorial) and against the bare
relay (the floor, given as a percentage).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.stats import X, median, ms, ms_unit, number, ratio
from bench.targets import LABELS

BASE = "tutorial-pubsub"
FLOOR = "relay"
HEADLINE_LOAD = 1000
TARGET_P99 = 0.040
Rounds = list[dict[str, dict[str, Any]]]


@dataclass
class Sizes:
    """How big each benchmark is: the full run's, or --quick's."""

    fanout: list[tuple[int, int]]  # (receivers, messages)
    loads: list[int]
    latency_receivers: int
    latency_seconds: float  # at the headline load
    sweep_seconds: float  # at the chart's other loads
    handshakes: int
    handshake_concurrency: int
    storm: int
    memory: int


FULL = Sizes(
    fanout=[(100, 200), (1000, 50)],
    loads=[500, 1000, 2000, 4000, 8000],
    latency_receivers=100,
    latency_seconds=5.0,
    sweep_seconds=3.0,
    handshakes=500,
    handshake_concurrency=50,
    storm=2000,
    memory=10_000,
)
QUICK = Sizes(
    fanout=[(100, 50), (300, 10)],
    loads=[1000, 4000],
    latency_receivers=100,
    latency_seconds=2.0,
    sweep_seconds=1.0,
    handshakes=100,
    handshake_concurrency=25,
    storm=300,
    memory=1000,
)


@dataclass
class Figure:
    """One metric of one server: the median and the value of each round (None: missing)."""

    rounds: list[float | None] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return median(self.rounds)

    @property
    def worst(self) -> float | None:
        present = [v for v in self.rounds if v is not None and not math.isnan(v)]
        return min(present) if present else None


def _get(result: dict[str, Any], *path: Any) -> Any:
    for key in path:
        if result is None:
            return None
        if isinstance(key, int) and isinstance(result, list):
            result = result[key] if key < len(result) else None
        else:
            result = result.get(key) if isinstance(result, dict) else None
    return result


def _latency_point(result: dict[str, Any], load: int) -> dict[str, Any] | None:
    for point in result.get("latency") or []:
        if point["load"] == load:
            return point
    return None


class Summary:
    """Figures for every (server, metric), computed once from the rounds."""

    def __init__(self, rounds: Rounds, sizes: Sizes, targets: list[str]) -> None:
        self.rounds = rounds
        self.sizes = sizes
        self.targets = targets
        self.small, self.large = (str(r) for r, _ in sizes.fanout)

    def figure(self, target: str, get: Callable[[dict[str, Any]], Any]) -> Figure:
        values = []
        for round_ in self.rounds:
            result = round_.get(target)
            value = get(result) if result else None
            values.append(None if value is None else float(value))
        return Figure(values)

    # --- the metrics -------------------------------------------------------------------------

    def fanout(self, target: str, size: str) -> Figure:
        return self.figure(target, lambda r: _get(r, "fanout", size, "rate"))

    def delivered(self, target: str, size: str) -> Figure:
        def share(r: dict[str, Any]) -> float | None:
            run = _get(r, "fanout", size)
            return run["delivered"] / run["expected"] if run and run["expected"] else None

        return self.figure(target, share)

    def latency(self, target: str, key: str, load: int = HEADLINE_LOAD) -> Figure:
        return self.figure(target, lambda r: (_latency_point(r, load) or {}).get(key))

    def handshakes(self, target: str) -> Figure:
        return self.figure(target, lambda r: _get(r, "handshakes", "rate"))

    def handshake_cpu(self, target: str) -> Figure:
        """Server CPU ms per socket opened, in the steady handshake run."""
        return self.figure(target, lambda r: _get(r, "handshakes", "server_cpu_ms"))

    def storm(self, target: str, key: str) -> Figure:
        return self.figure(target, lambda r: _get(r, "storm", key))

    def memory(self, target: str, key: str) -> Figure:
        return self.figure(target, lambda r: _get(r, "memory", key))

    def cpu(self, target: str, size: str, group: str) -> Figure:
        return self.figure(target, lambda r: _get(r, "fanout", size, "cpu", group))

    def scaling(self, size: str) -> Figure:
        """Per round: two processes behind nginx over one process, same burst."""
        values = []
        for round_ in self.rounds:
            one = _get(round_.get("project") or {}, "fanout", size, "rate")
            two = _get(round_.get("project-nginx") or {}, "fanout", size, "rate")
            values.append(ratio(two, one))
        return Figure(values)

    def sweep(self, target: str) -> list[dict[str, Any]]:
        """The chart's points: per offered load, medians over the rounds that reached it
        (a load only some rounds reached is kept when most did)."""
        points = []
        for load in self.sizes.loads:
            reached = [p for r in self.rounds if (p := _latency_point(r.get(target) or {}, load))]
            if len(reached) * 2 <= len([r for r in self.rounds if r.get(target)]):
                continue
            points.append(
                {
                    "load": load,
                    "p50": median([p["p50"] for p in reached]),
                    "p99": median([p["p99"] for p in reached]),
                    "max": median([p["max"] for p in reached]),
                    "lost": median([p["lost"] for p in reached]),
                    "rounds": len(reached),
                }
            )
        return points

    # --- cells -------------------------------------------------------------------------------

    def versus(
        self, value: float | None, base: float | None, floor: float | None, *, percent: bool
    ) -> str:
        parts = []
        if (r := ratio(value, base)) is not None:
            parts.append(f"{r:.2f}{X} PubSub")
        if (f := ratio(value, floor)) is not None:
            parts.append(f"{f * 100:.0f} % floor" if percent else f"{f:.1f}{X} floor")
        return f" ({', '.join(parts)})" if parts else ""

    def fanout_cell(self, target: str, size: str) -> str:
        value = self.fanout(target, size).median
        if value is None:
            return "n/a"
        cell = number(value)
        if target not in (BASE, FLOOR):
            cell += self.versus(
                value,
                self.fanout(BASE, size).median,
                self.fanout(FLOOR, size).median,
                percent=True,
            )
        elif target == BASE:
            cell += self.versus(value, None, self.fanout(FLOOR, size).median, percent=True)
        share = self.delivered(target, size).worst
        if share is not None and share < 0.999:
            cell += f"; only {share * 100:.0f} % delivered"
        return cell

    def latency_cell(self, target: str) -> str:
        p50, p99, top = (self.latency(target, k).median for k in ("p50", "p99", "max"))
        if p99 is None:
            return "n/a"
        cell = f"{ms(p50)} / {ms(p99)} / {ms(top)}"
        base = self.latency(BASE, "p99").median
        if target != BASE and (r := ratio(p99, base)) is not None:
            cell += f" (p99 {r:.2f}{X} PubSub)"
        lost = self.latency(target, "lost").median
        if lost:
            cell += f"; {lost * 100:.1f} % lost"
        return cell

    def handshake_cell(self, target: str) -> str:
        value = self.handshakes(target).median
        if value is None:
            return "n/a"
        base = None if target == BASE else self.handshakes(BASE).median
        floor = None if target == FLOOR else self.handshakes(FLOOR).median
        return number(value) + self.versus(value, base, floor, percent=True)

    def storm_cell(self, target: str) -> str:
        entered = self.storm(target, "in").median
        if entered is None:
            return "n/a"
        refused = self.storm(target, "refused").median
        # Only when most rounds let sockets in: a p99 of the few that got in once misleads.
        p99 = self.storm(target, "p99").median if entered else None
        cell = f"{number(entered)} / {number(refused)} / {ms_unit(p99)}"
        base = self.storm(BASE, "p99").median
        if target != BASE and (r := ratio(p99, base)) is not None:
            cell += f" (p99 {r:.2f}{X} PubSub)"
        return cell

    def memory_cell(self, target: str) -> str:
        value = self.memory(target, "kib_per_socket").median
        if value is None:
            return "n/a"
        base = None if target == BASE else self.memory(BASE, "kib_per_socket").median
        floor = None if target == FLOOR else self.memory(FLOOR, "kib_per_socket").median
        cell = f"{value:.1f}" + self.versus(value, base, floor, percent=False)
        entered = self.memory(target, "in").worst
        if entered is not None and entered < self.sizes.memory:
            cell += f"; only {number(entered)} in"
        return cell

    def scaling_cell(self, target: str) -> str:
        if target != "project-nginx":
            return "n/a"
        small = self.scaling(self.small).median
        large = self.scaling(self.large).median
        if small is None:
            return "n/a"
        cell = f"{small:.2f}{X}"
        if large is not None:
            cell += f" ({large:.2f}{X} at {number(float(self.large))})"
        return cell

    def table(self) -> tuple[list[str], list[list[str]]]:
        s = self.sizes
        header = [
            "server",
            f"fan-out, {number(float(self.small))} receivers (deliveries/s)",
            f"fan-out, {number(float(self.large))} receivers (deliveries/s)",
            f"latency at {number(HEADLINE_LOAD)} deliveries/s: p50 / p99 / max (ms)",
            f"handshakes/s ({number(s.handshakes)}, {s.handshake_concurrency} at once)",
            f"storm of {number(s.storm)}: in / refused / handshake p99",
            f"KiB per idle socket ({number(s.memory)} on one process)",
            "1 → 2 processes (fan-out)",
        ]
        rows = []
        for target in self.targets:
            rows.append(
                [
                    LABELS[target],
                    self.fanout_cell(target, self.small),
                    self.fanout_cell(target, self.large),
                    self.latency_cell(target),
                    self.handshake_cell(target),
                    self.storm_cell(target),
                    self.memory_cell(target),
                    self.scaling_cell(target),
                ]
            )
        return header, rows

    # --- targets -----------------------------------------------------------------------------

    def targets_met(self) -> list[tuple[str, str, str]]:
        """(status, target, the numbers), status "met", "NOT met" or "n/a"."""
        out = []

        def verdict(ok: bool | None) -> str:
            return "n/a" if ok is None else ("met" if ok else "NOT met")

        mine = self.fanout("project", self.small).median
        base = self.fanout(BASE, self.small).median
        floor = self.fanout(FLOOR, self.small).median
        vs_base, vs_floor = ratio(mine, base), ratio(mine, floor)
        ok = None if vs_base is None or vs_floor is None else vs_base >= 2 and vs_floor >= 0.25
        out.append(
            (
                verdict(ok),
                f"fan-out ({self.small} receivers) ≥ 2{X} the PubSub tutorial and ≥ 25 % of "
                "the bare floor",
                f"{number(mine)}/s = {_x(vs_base)} PubSub ({number(base)}/s), "
                f"{_pct(vs_floor)} of the floor ({number(floor)}/s)",
            )
        )
        p99 = self.latency("project", "p99").median
        lost = self.latency("project", "lost").median
        ok = None if p99 is None else p99 <= TARGET_P99 and not lost
        out.append(
            (
                verdict(ok),
                f"p99 ≤ {TARGET_P99 * 1000:.0f} ms at {number(HEADLINE_LOAD)} deliveries/s "
                f"with {self.sizes.latency_receivers} receivers",
                f"p99 {ms(p99)} ms (p50 {ms(self.latency('project', 'p50').median)} ms, "
                f"max {ms(self.latency('project', 'max').median)} ms)",
            )
        )
        refused = self.storm("project", "refused").median
        worst_refused = max((v for v in self.storm("project", "refused").rounds if v), default=0)
        p99 = self.storm("project", "p99").median if self.storm("project", "in").median else None
        base_p99 = self.storm(BASE, "p99").median
        if refused is None or base_p99 is None:
            ok = None
        else:
            ok = worst_refused == 0 and p99 is not None and p99 <= base_p99
        out.append(
            (
                verdict(ok),
                f"{number(self.sizes.storm)}-socket authenticated storm: 0 refused and "
                "handshake p99 ≤ the PubSub tutorial's",
                f"refused {number(refused)} (worst round {number(worst_refused)}), "
                f"p99 {ms_unit(p99)} vs PubSub {ms_unit(base_p99)}",
            )
        )
        mine = self.memory("project", "kib_per_socket").median
        peers = {t: self.memory(t, "kib_per_socket").median for t in ("tutorial-core", BASE)}
        known = [v for v in peers.values() if v is not None]
        ok = None if mine is None or not known else mine < min(known)
        out.append(
            (
                verdict(ok),
                "memory per idle socket below the tutorial's (both layers)",
                f"{_kib(mine)} vs core {_kib(peers['tutorial-core'])}, PubSub {_kib(peers[BASE])}",
            )
        )
        entered = self.memory("project", "in").worst
        ok = None if entered is None else entered >= self.sizes.memory
        out.append(
            (
                verdict(ok),
                f"{number(self.sizes.memory)} idle sockets on one process",
                f"{number(entered)} open at the end (worst round)",
            )
        )
        scale = self.scaling(self.small).median
        scale_large = self.scaling(self.large).median
        busy = self.cpu_busy("project-nginx", self.small)
        ok = None if scale is None else scale >= 1.6
        note = ""
        if busy is not None and busy >= 170:
            note = (
                f"; the CPUs do not allow it here: the machine was {busy:.0f} % busy "
                f"({_cores() * 100} % = all {_cores()} cores) during the two-process run"
            )
        out.append(
            (
                verdict(ok),
                f"two processes behind nginx deliver ≥ 1.6{X} one process (where the CPUs allow)",
                f"{_x(scale)} with {self.small} receivers "
                f"({number(self.fanout('project-nginx', self.small).median)}/s vs "
                f"{number(self.fanout('project', self.small).median)}/s), {_x(scale_large)} "
                f"with {number(float(self.large))}{note}",
            )
        )
        return out

    def cpu_busy(self, target: str, size: str) -> float | None:
        groups = ("client", "server", "redis", "postgres", "nginx", "rest")
        values = [self.cpu(target, size, g).median for g in groups]
        present = [v for v in values if v is not None]
        return sum(present) if present else None


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}{X}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f} %"


def _kib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} KiB"


def _cores() -> int:
    return os.cpu_count() or 1


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown pipe table, padded so it also reads as plain text."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
