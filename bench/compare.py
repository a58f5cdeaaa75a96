"""One command, one machine, one run: the project against its peers, as docs/benchmarks.md.

    python -m bench.compare                      # what `make bench` runs: 3 rounds, docs/
    python -m bench.compare --quick              # 1 round, small sizes, prints only
    python -m bench.compare --only project tutorial-pubsub --skip memory storm
    python -m bench.compare --rounds 5 --output-dir /tmp/bench --json /tmp/bench/raw.json
    python -m bench.compare --render /tmp/bench/raw.json   # re-publish a saved run

Starts a redis-server and a PostgreSQL for the run, then in each round starts every server
in turn (the order rotates between rounds), runs every benchmark against it, and stops it:
fan-out (bench/fanout.py), latency against offered load (bench/latency.py), handshakes and
the storm (bench/connections.py), then, on a freshly started process, idle memory
(bench/memory.py). Prints one table of medians with ratios to the peers, the targets met or
not, and the machine; a full run (no --quick, --only or --skip) writes docs/benchmarks.md
and docs/benchmarks-latency.svg, a partial one only where --output-dir says.

Every load is bounded by counts and timeouts, every server listens on 127.0.0.1, and every
process is stopped at the end, on failure and on Ctrl-C or SIGTERM too.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import resource
import shlex
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import chart, document, machine
from bench.connections import handshakes, storm
from bench.fanout import fanout
from bench.latency import sweep
from bench.memory import memory
from bench.procs import reap_children
from bench.report import FULL, QUICK, Sizes, Summary, text_table
from bench.stats import ms, number
from bench.targets import LABELS, TARGETS, Stack, Target, make_target

BENCHMARKS = ("fanout", "latency", "handshakes", "storm", "memory")
ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# Wall-clock bounds of one benchmark against one server, beyond its own timeouts.
LIMITS = {"fanout": 300.0, "latency": 300.0, "handshakes": 120.0, "storm": 180.0}
MEMORY_LIMIT = 900.0
# The client holds every socket of the memory benchmark, plus files and pipes.
FD_HEADROOM = 512


def log(message: str) -> None:
    print(message, flush=True)


def raise_fd_limit(needed: int) -> None:
    """Up to the hard limit; the servers inherit it (10,000 sockets on one process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < needed:
        log(f"warning: open-file limit {wanted} < {needed}; the memory benchmark may fail")


def run_async(make: Callable[[], Awaitable[Any]], limit: float) -> Any:
    """One benchmark on a fresh event loop, so nothing of one leaks into the next."""

    async def bounded() -> Any:
        return await asyncio.wait_for(make(), limit)

    return asyncio.run(bounded())


class Runner:
    def __init__(
        self, stack: Stack, workdir: Path, sizes: Sizes, skip: set[str], memory_rounds: int
    ) -> None:
        self.stack = stack
        self.memory_rounds = memory_rounds
        self.workdir = workdir
        self.sizes = sizes
        self.skip = skip
        self.errors: list[str] = []

    def attempt(
        self, prefix: str, name: str, make: Callable[[], Awaitable[Any]], limit: float
    ) -> Any:
        started = time.perf_counter()
        try:
            result = run_async(make, limit)
        except Exception as exc:  # a failed benchmark is reported, the run goes on
            message = f"{prefix} {name}: {type(exc).__name__}: {exc}"
            self.errors.append(message)
            log(f"  {message}")
            traceback.print_exc(limit=3)
            return None
        log(f"  {name}: {describe(name, result)} [{time.perf_counter() - started:.0f} s]")
        return result

    def target(self, round_: int, name: str) -> dict[str, Any]:
        """Every benchmark against one server; its results by benchmark name."""
        prefix = f"round {round_ + 1} {name}"
        results: dict[str, Any] = {}
        workdir = self.workdir / f"round{round_ + 1}"
        loads = [b for b in BENCHMARKS if b != "memory" and b not in self.skip]
        if loads:
            server = make_target(name, self.stack, workdir)
            try:
                server.start()
                self.loads(prefix, server, loads, results)
            except Exception as exc:
                self.errors.append(f"{prefix}: {type(exc).__name__}: {exc}")
                log(f"  {prefix} failed: {exc}")
            finally:
                server.stop()
                self.stack.flush_redis()
        # On one process only, and a fresh one: memory freed by the loads above would be
        # reused by the sockets and hide their cost.
        wanted = "memory" not in self.skip and round_ < self.memory_rounds
        if wanted and name != "project-nginx":
            server = make_target(name, self.stack, workdir / "memory")
            try:
                server.start()
                results["memory"] = self.attempt(
                    prefix,
                    "memory",
                    lambda: memory(server, self.sizes.memory),
                    MEMORY_LIMIT,
                )
            except Exception as exc:
                self.errors.append(f"{prefix} memory: {type(exc).__name__}: {exc}")
                log(f"  {prefix} memory failed: {exc}")
            finally:
                server.kill()
                self.stack.flush_redis()
        return results

    def loads(
        self, prefix: str, server: Target, loads: list[str], results: dict[str, Any]
    ) -> None:
        s = self.sizes
        if "fanout" in loads:
            results["fanout"] = {}
            for receivers, messages in s.fanout:
                run = self.attempt(
                    prefix,
                    f"fanout {receivers}",
                    lambda r=receivers, m=messages: fanout(server, r, m),
                    LIMITS["fanout"],
                )
                if run is not None:
                    results["fanout"][str(receivers)] = run
        if "latency" in loads:
            results["latency"] = self.attempt(
                prefix,
                "latency",
                lambda: sweep(
                    server,
                    s.loads,
                    receivers=s.latency_receivers,
                    seconds=s.latency_seconds,
                    others=s.sweep_seconds,
                ),
                LIMITS["latency"],
            )
        if "handshakes" in loads:
            results["handshakes"] = self.attempt(
                prefix,
                "handshakes",
                lambda: handshakes(server, s.handshakes, s.handshake_concurrency),
                LIMITS["handshakes"],
            )
        if "storm" in loads:
            results["storm"] = self.attempt(
                prefix, "storm", lambda: storm(server, s.storm), LIMITS["storm"]
            )


def describe(name: str, result: Any) -> str:
    """One line of progress per benchmark."""
    if result is None:
        return "failed"
    if name.startswith("fanout"):
        return (
            f"{number(result['rate'])} deliveries/s ({number(result['delivered'])}/"
            f"{number(result['expected'])} in {result['seconds']:.1f} s, "
            f"{result['messages']} messages, {result['open_failures']} opens refused and retried; "
            f"CPU % {result['cpu']})"
        )
    if name == "latency":
        return "; ".join(
            f"{p['load']}/s p50 {ms(p['p50'])} p99 {ms(p['p99'])} ms"
            + (f" lost {p['lost'] * 100:.0f} %" if p["lost"] else "")
            for p in result
        )
    if name in ("handshakes", "storm"):
        return (
            f"{result['in']}/{result['sockets']} in, {number(result['rate'])}/s, "
            f"p50 {ms(result['p50'])} p99 {ms(result['p99'])} ms, refused {result['causes']}, "
            f"listen overflows {result['listen_overflows']}"
        )
    if name == "memory":
        per = result["kib_per_socket"]
        return (
            f"{result['in']}/{result['sockets']} in, "
            f"{'n/a' if per is None else f'{per:.1f}'} KiB/socket "
            f"(RSS {result['rss_before_kib'] // 1024} -> {result['rss_after_kib'] // 1024} MiB), "
            f"refused {result['causes']}"
        )
    return str(result)


def names(values: list[str] | None, known: tuple[str, ...], what: str) -> list[str]:
    """--only/--skip values, space- or comma-separated, checked against the known names."""
    found = [v for value in values or [] for v in value.split(",") if v]
    unknown = sorted(set(found) - set(known))
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    return found


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="one round, small sizes")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    parser.add_argument(
        "--memory-rounds",
        type=int,
        default=1,
        help="rounds that also run the memory benchmark, from the first (default 1: opening "
        "10,000 authenticated sockets takes the project minutes, and the figure barely moves)",
    )
    parser.add_argument("--only", nargs="+", metavar="SERVER", help=", ".join(TARGETS))
    parser.add_argument("--skip", nargs="+", metavar="BENCHMARK", help=", ".join(BENCHMARKS))
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="where benchmarks.md and benchmarks-latency.svg go "
        "(default: docs/ for a full run, nowhere for --quick/--only/--skip)",
    )
    parser.add_argument("--json", type=Path, help="also write every round's raw results here")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: print and write (to docs/, or --output-dir) a run saved by --json",
    )
    return parser.parse_args(argv)


def interrupt(signum: int, frame: Any) -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt wherever the main thread is, which unwinds
    through every `finally` that stops a process. Installed for SIGINT too because
    asyncio.run() otherwise turns Ctrl-C into a cancellation the benchmark may absorb."""
    raise KeyboardInterrupt


def measure(args: argparse.Namespace, command: str) -> dict[str, Any] | None:
    """Every round against every server; the run as `publish` and --render take it, or None
    when interrupted."""
    sizes = QUICK if args.quick else FULL
    rounds = args.rounds or (1 if args.quick else 3)
    targets = [t for t in TARGETS if t in (names(args.only, TARGETS, "server") or TARGETS)]
    skip = set(names(args.skip, BENCHMARKS, "benchmark"))
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    raise_fd_limit(sizes.memory + FD_HEADROOM)
    info = machine.describe()
    log(f"machine: {machine.one_line(info)}")
    log(f"servers: {', '.join(targets)}; rounds: {rounds}; skipped: {sorted(skip) or 'none'}")
    load_before = Path("/proc/loadavg").read_text().split()[0]
    started = time.perf_counter()
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    per_round: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as tmp:
        stack = Stack(Path(tmp))
        runner = Runner(stack, Path(tmp), sizes, skip, args.memory_rounds)
        try:
            stack.start()
            for round_ in range(rounds):
                shift = round_ % len(targets)
                order = targets[shift:] + targets[:shift]
                per_round.append({})
                for name in order:
                    log(f"[round {round_ + 1}/{rounds}] {LABELS[name]}")
                    per_round[-1][name] = runner.target(round_, name)
        except KeyboardInterrupt:
            log("interrupted: stopping every process")
            return None
        finally:
            # Nothing may cut the cleanup short: a second Ctrl-C waits for it.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                stack.stop()
            finally:
                left = reap_children()
                if left:
                    log(f"stopped leftover processes {left}")
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
    load_after = Path("/proc/loadavg").read_text().split()[0]
    return {
        "command": command,
        "date": date,
        "duration": time.perf_counter() - started,
        "load": f"{load_before} at the start, {load_after} at the end",
        "machine": info,
        "sizes": vars(sizes),
        "targets": targets,
        "rounds": per_round,
        "errors": runner.errors,
    }


def publish(run: dict[str, Any], output_dir: Path | None) -> None:
    """Print the comparison; write the Markdown and the chart into `output_dir`, if any."""
    summary = Summary(run["rounds"], Sizes(**run["sizes"]), run["targets"])
    header, rows = summary.table()
    took = f"took {run['duration'] / 60:.1f} minutes; load {run['load']}"
    log(f"\nMedians of {document.plural(len(run['rounds']), 'round')}; {took}\n")
    log(text_table(header, rows))
    log("\nTargets (project, 1 process, unless named):")
    for status, what, numbers in summary.targets_met():
        log(f"  [{status}] {what}: {numbers}")
    log("\nMachine:")
    for label, value in run["machine"].items():
        log(f"  {label}: {value}")
    if run["errors"]:
        log("\nErrors:")
        for error in run["errors"]:
            log(f"  {error}")
    if output_dir is None:
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    chart_name = "benchmarks-latency.svg"
    title = (
        f"Latency against offered load, {run['machine']['cores']} cores, client on the same box"
    )
    series = {LABELS[t]: summary.sweep(t) for t in run["targets"]}
    (output_dir / chart_name).write_text(chart.latency_svg(series, title))
    (output_dir / "benchmarks.md").write_text(
        document.markdown(
            summary,
            command=run["command"],
            date=run["date"],
            duration=run["duration"],
            machine=run["machine"],
            chart_name=chart_name,
            errors=run["errors"],
            load=run["load"],
        )
    )
    log(f"\nwrote {output_dir / 'benchmarks.md'} and {output_dir / chart_name}")


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    args = parse(given)
    if args.render:
        # A saved run, published again (after a change to the report, say): no measuring.
        run = json.loads(args.render.read_text())
        publish(run, args.output_dir or (None if run.get("partial") else DOCS))
        return 0
    # The command as it bears on the figures: where the results were saved does not.
    shown = list(given)
    for option in ("--json", "--output-dir"):
        while option in shown[:-1]:
            index = shown.index(option)
            del shown[index : index + 2]
    command = shlex.join(["python", "-m", "bench.compare", *shown]) if shown else "make bench"
    run = measure(args, command)
    if run is None:
        return 130
    run["partial"] = bool(args.quick or args.only or args.skip)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(run, indent=1))
    publish(run, args.output_dir or (None if run["partial"] else DOCS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
