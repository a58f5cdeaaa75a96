"""docs/benchmarks.md, written by the benchmark: the command, the machine, the comparison,
the targets, the latency chart, and every round's value behind each median."""

from __future__ import annotations

from typing import Any

from bench.report import HEADLINE_LOAD, Summary, text_table
from bench.stats import X, ms, number
from bench.targets import LABELS

CPU_GROUPS = ("client", "server", "redis", "postgres", "nginx", "rest")

BOUNDS = """\
## What bounds each figure

- **Fan-out**: with 100 receivers, the one sender. Its messages are stored one at a time,
  in the order it sent them (each takes its room's next `seq` and is acknowledged once
  stored), so the burst is bound by one PostgreSQL write per message, with its thread hop,
  times 100 receivers: the *server* column stays under a full core and *postgres* is busy.
  With 1,000 receivers the server process is the bound: a daphne process is one Python
  thread, the channel layer publishes a message once and decodes it once per process, and
  what is left grows with the receivers: one WebSocket frame built and written per socket
  (autobahn's framing, Twisted's transport write), a full core. The relay is bound by the
  benchmark client instead (its *client* column at a full core), so its figure, and every
  "% floor", is a floor on the floor.
- **Latency**: each message is stored before it is published (its room's `seq`, taken in
  the transaction that stores it, is what lets a client resume without loss), so a
  delivery's latency includes a PostgreSQL write the tutorial does not make; a p99 that
  moves from round to round is the machine's two cores shared by client, server, Redis
  and PostgreSQL.
- **Handshakes and the storm**: bound by the server CPU per socket opened (the table
  above). Besides daphne's HTTP upgrade, the project's handshake verifies the token,
  reads its sign-in session (PostgreSQL), takes the user's and the address's connection
  slots (Redis) and subscribes the user's group; the tutorial's only subscribes its room.
  A wave of N sockets is about N times that CPU time of one core: admission
  (`WS_HANDSHAKES_AT_ONCE`) serves it whole and in arrival order instead of refusing or
  timing out the tail, so the wave's p99 is about its total CPU time.
- **Memory**: per socket, daphne's and autobahn's protocol objects and buffers, the
  consumer, its rate limiter and expiry timer, and its entries in the layer's groups.
- **Two processes**: on this machine client, nginx and both servers share two cores (the
  CPU table's row adds up to about 200 %), so the second process has no core of its own
  to add."""

METHOD = """\
## What each figure is

Every server gets the same load from one client process (asyncio + `websockets`, no
permessage-deflate, no client pings) on the same machine, bound to 127.0.0.1 on free ports.
Each round starts every server afresh, in turn (the order rotates from round to round), and
runs every benchmark against it; the table gives the median of the rounds.

- **Fan-out**: R receivers in one fresh room, one sender (also a member) writes N messages
  as fast as the server reads them. deliveries/s = deliveries counted at the receivers /
  (last delivery - first send). Dropped messages are not counted: the run ends when nothing
  arrived for 3 s. An unrecorded warm-up burst of N/4 goes first; a run shorter than
  1.5 s is repeated with more messages (N up to 20 times) so that fast servers are timed over
  seconds.
- **Latency**: 100 receivers and one sender; the sender sends on a fixed schedule (offered
  load / 100 messages a second: 5 s at the headline 1,000 deliveries/s, 3 s at the chart's
  other loads, after 1 s of unrecorded warm-up), each body carrying the time it was due;
  latency is arrival minus that time, over every delivery (no coordinated omission). The
  sweep stops after the first load where a server fell behind (p99 over 1 s or over 1 %
  lost).
- **Handshakes/s**: sockets opened with at most 50 handshakes in flight; sockets that got
  in / wall time. For the project each handshake is the authenticated one (access token in
  the `Authorization` header, session check, socket caps in Redis, the user's group); the
  tutorial's joins its room's group; the relay's does nothing.
- **Storm**: every socket started at the same instant; *in* = open and still open 1 s after
  the last handshake ended, *refused* = HTTP error, timeout (30 s, or daphne's own 5 s for
  the application to accept), TCP error, or closed by the server right after opening.
  Handshake p99 is over the sockets that got in. The kernel's listen-queue overflows are
  counted too: each costs that client a SYN retransmit 1 s (then 3 s) later, so a short
  accept backlog (Twisted's default is 50, asyncio's 100, nginx's 511) shows as steps of
  about 1 s and 3 s in the handshake times whatever the server does.
- **Memory**: on a freshly started server process, VmRSS before and after opening that many
  sockets (the project joins each to one room; the peers' URL is the room) and waiting
  until the server is idle; KiB per socket = growth / sockets still open. Run in the first
  round only unless `--memory-rounds` says more: it takes the project minutes, and the
  figure moves little between rounds.
- **1 → 2 processes**: the same fan-out burst against two `manage.py serve` processes
  behind the shipped nginx (receivers spread over both by nginx's round robin) over one
  process reached directly, per round, median of the rounds.

The project runs as deployed (`manage.py serve`, `config.settings.production`, Redis
channel layer, PostgreSQL through its connection pool, `LOG_LEVEL=WARNING`), with what
one benchmark client needs lifted through the environment: `WS_RATE_BURST`,
`WS_RATE_PER_SECOND`, `WS_MAX_CONNECTIONS_PER_USER`, `WS_MAX_CONNECTIONS_PER_ADDRESS`, the
REST throttles and room quota, a day-long access token (`JWT_ACCESS_SECONDS`), and
`SECURE_SSL_REDIRECT=false` for plain HTTP on loopback. Every project socket presents one
account's token. Behind nginx, the shipped `chat-http.conf` and `chat-locations.conf` are
used unchanged except for the /ws/ handshake rate and socket cap per client address
(`limit_req zone=chat_handshakes`, `limit_conn chat_sockets`), which one client address
would otherwise hit at once. The tutorial peers (`bench/peers/tutorial/`) are the Channels
tutorial's chat with stock settings, run by `python -m daphne` on each channels-redis layer;
the relay (`bench/peers/relay.py`) forwards each text to its room with `websockets`'
`broadcast()`.

Caveats. Client and servers share the machine's cores: a figure is a floor for the
server, and the CPU tables above say who was busy. The relay's fan-out is bounded by the
client (one Python process reading every delivery), so the floor is at least its figure;
needing both cores, it is also the figure that moves most when anything else runs on the
machine (the *rest* column), and with it every "% floor".
"""


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _rounds(values: list[float | None], fmt: Any) -> str:
    return " · ".join("-" if v is None else fmt(v) for v in values)


def _with_rounds(figure: Any, fmt: Any) -> str:
    if figure.median is None:
        return "n/a"
    return f"{fmt(figure.median)} [{_rounds(figure.rounds, fmt)}]"


def per_round_table(summary: Summary) -> str:
    small, large = summary.small, summary.large
    header = [
        "server",
        f"fan-out {number(float(small))}",
        f"fan-out {number(float(large))}",
        f"p99 at {number(HEADLINE_LOAD)}/s (ms)",
        "handshakes/s",
        "storm refused",
        "storm p99 (ms)",
        "KiB/socket",
    ]
    rows = []
    for target in summary.targets:
        rows.append(
            [
                LABELS[target],
                _with_rounds(summary.fanout(target, small), number),
                _with_rounds(summary.fanout(target, large), number),
                _with_rounds(summary.latency(target, "p99"), ms),
                _with_rounds(summary.handshakes(target), number),
                _with_rounds(summary.storm(target, "refused"), number),
                _with_rounds(summary.storm(target, "p99"), ms),
                _with_rounds(summary.memory(target, "kib_per_socket"), lambda v: f"{v:.1f}"),
            ]
        )
    return text_table(header, rows)


def cpu_table(summary: Summary, size: str) -> str:
    header = ["server", *(f"{g} %" for g in CPU_GROUPS)]
    rows = []
    for target in summary.targets:
        cells = []
        for group in CPU_GROUPS:
            value = summary.cpu(target, size, group).median
            cells.append("-" if value is None else f"{value:.0f}")
        rows.append([LABELS[target], *cells])
    return text_table(header, rows)


def handshake_cpu_table(summary: Summary) -> str:
    header = ["server", "server CPU per socket opened (ms)", "handshakes/s"]
    rows = []
    for target in summary.targets:
        cpu = summary.handshake_cpu(target).median
        rate = summary.handshakes(target).median
        rows.append(
            [
                LABELS[target],
                "n/a" if cpu is None else f"{cpu:.2f}",
                "n/a" if rate is None else number(rate),
            ]
        )
    return text_table(header, rows)


def sweep_table(summary: Summary) -> str:
    loads = summary.sizes.loads
    header = ["server", *(f"{number(load)}/s" for load in loads)]
    rows = []
    for target in summary.targets:
        points = {p["load"]: p for p in summary.sweep(target)}
        cells = []
        for load in loads:
            p = points.get(load)
            if p is None:
                cells.append("saturated" if points else "n/a")
                continue
            cell = f"{ms(p['p50'])} / {ms(p['p99'])}"
            if p["lost"]:
                cell += f" ({p['lost'] * 100:.0f} % lost)"
            cells.append(cell)
        rows.append([LABELS[target], *cells])
    return text_table(header, rows)


def storm_details(rounds: list[dict[str, dict[str, Any]]], targets: list[str]) -> list[str]:
    """Per server, per round: why sockets were refused, and the listen-queue overflows."""
    lines = []
    for target in targets:
        storms = [((r.get(target) or {}).get("storm") or {}) for r in rounds]
        if not any(storms):
            continue
        shown = []
        for storm in storms:
            causes = ", ".join(f"{k}: {v}" for k, v in storm.get("causes", {}).items())
            shown.append(
                f"refused: {causes or 'none'}, "
                f"{number(storm.get('listen_overflows'))} listen-queue overflows"
            )
        lines.append(f"- {LABELS[target]}: " + "; ".join(shown))
    return lines


def markdown(
    summary: Summary,
    *,
    command: str,
    date: str,
    duration: float,
    machine: dict[str, str],
    chart_name: str,
    errors: list[str],
    load: str,
) -> str:
    header, rows = summary.table()
    out = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench.compare`); do not edit by hand, run it "
        "again. Measured from outside on one machine, client and "
        "servers on the same box, one sender and 100 receivers in one room, the project as "
        "deployed next to a stock Channels tutorial chat on both channels-redis layers and a "
        "bare `websockets` relay (the floor).",
        "",
        "## Run",
        "",
        f"- command: `{command}`"
        + (" (`python -m bench.compare`)" if command == "make bench" else ""),
        f"- date: {date}",
        f"- rounds: {len(summary.rounds)} (medians; per-round values below), "
        f"took {duration / 60:.1f} minutes",
        f"- machine load (1-minute load average): {load}",
        "",
        "## Machine",
        "",
        *(f"- {label}: {value}" for label, value in machine.items()),
        "",
        "## Results",
        "",
        f"Medians of {plural(len(summary.rounds), 'round')}. Ratios are to the tutorial on "
        f"RedisPubSubChannelLayer ({X} PubSub) and to the bare relay (% floor, or {X} floor "
        "for memory).",
        "",
        text_table(header, rows),
        "",
        "## Targets",
        "",
        "Ratios from this run's medians.",
        "",
        *(f"- **{status}**: {what}: {numbers}" for status, what, numbers in summary.targets_met()),
        "",
        "## Latency against offered load",
        "",
        f"![latency p50 and p99 against offered load]({chart_name})",
        "",
        "p50 / p99 in ms, medians of the rounds that reached each load:",
        "",
        sweep_table(summary),
        "",
        "## Per-round values",
        "",
        "Median [round 1 · round 2 · ...].",
        "",
        per_round_table(summary),
        "",
    ]
    details = storm_details(summary.rounds, summary.targets)
    if details:
        out += ["Storm, per round:", "", *details, ""]
    out += [
        "## Where the CPU went",
        "",
        f"Share of one core used by each process group during the fan-out burst to "
        f"{summary.small} receivers (200 % is both cores of this machine). *rest* is the "
        "rest of the machine: other processes, and kernel work billed to no process "
        "(loopback TCP is partly that); a large *rest* means the round was disturbed.",
        "",
        cpu_table(summary, summary.small),
        "",
        f"and to {number(float(summary.large))} receivers:",
        "",
        cpu_table(summary, summary.large),
        "",
        "and per socket opened, in the handshake run (server processes, nginx included; "
        "the project's handshake is the authenticated one):",
        "",
        handshake_cpu_table(summary),
        "",
        BOUNDS,
        "",
    ]
    if errors:
        out += ["## Errors during the run", "", *(f"- {e}" for e in errors), ""]
    out += [METHOD]
    return "\n".join(out)
