"""`make audit`: published vulnerabilities in the pinned packages (docs/dependencies.md).

pip-audit asks PyPI which advisories affect each version pinned in requirements.txt and
requirements-dev.txt. An advisory recorded in deploy/audit-exceptions.txt (its id or one of
its aliases, with the day it was accepted and why) is reported but does not fail the audit;
any other fails it. A package pip-audit could not ask about is never taken for a clean one:
the audit fails, or with --allow-unavailable (as `make test` runs it: the network is not
the project's to fix) it warns and passes.

    python -m deploy.audit [--allow-unavailable] [requirements files...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXCEPTIONS_FILE = ROOT / "deploy" / "audit-exceptions.txt"
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt")
# An accepted advisory is looked at again at each monthly upgrade (docs/dependencies.md).
REVIEW_AFTER = datetime.timedelta(days=31)
# pip-audit asks PyPI once per package (about 80): plenty, and bounded if the network hangs.
REQUEST_TIMEOUT_SECONDS = 10
AUDIT_TIMEOUT_SECONDS = 300

# PYSEC-2024-1, GHSA-xxxx-xxxx-xxxx, CVE-2024-12345: the ids pip-audit reports.
_ADVISORY_ID = re.compile(r"^[A-Z]+-[A-Za-z0-9-]+$")


@dataclass(frozen=True)
class AcceptedAdvisory:
    """One line of the exceptions file: `ID  YYYY-MM-DD  reason`."""

    id: str
    accepted_on: datetime.date
    reason: str


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fix_versions: tuple[str, ...]

    def ids(self) -> set[str]:
        return {self.id, *self.aliases}


@dataclass
class Verdict:
    """What the audit found, sorted by what the exceptions file says of it."""

    audited: int = 0
    vulnerable: list[Finding] = field(default_factory=list)
    accepted: list[tuple[Finding, AcceptedAdvisory]] = field(default_factory=list)
    # (package, why pip-audit could not look it up)
    unaudited: list[tuple[str, str]] = field(default_factory=list)
    # Exceptions no finding needs any more: the pin moved past the advisory.
    unused: list[AcceptedAdvisory] = field(default_factory=list)


def read_exceptions(path: Path) -> list[AcceptedAdvisory]:
    """The accepted advisories; ValueError naming the line for anything malformed."""
    accepted = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=2)
        if len(parts) < 3:
            raise ValueError(f"{path.name}:{number}: expected `ID  YYYY-MM-DD  reason`")
        advisory_id, day, reason = parts
        if not _ADVISORY_ID.match(advisory_id):
            raise ValueError(f"{path.name}:{number}: {advisory_id!r} is not an advisory id")
        try:
            accepted_on = datetime.date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"{path.name}:{number}: {day!r} is not a YYYY-MM-DD date") from None
        accepted.append(AcceptedAdvisory(advisory_id, accepted_on, reason))
    return accepted


def judge(report: dict[str, Any], accepted: Iterable[AcceptedAdvisory]) -> Verdict:
    """Sort pip-audit's JSON report (`--format json`) against the accepted advisories."""
    by_id = {advisory.id: advisory for advisory in accepted}
    used: set[str] = set()
    verdict = Verdict()
    seen: set[tuple[str, str]] = set()
    for dependency in report.get("dependencies", []):
        name = dependency["name"]
        # requirements-dev.txt includes requirements.txt: each pin once.
        pin = (name, dependency.get("version", ""))
        if pin in seen:
            continue
        seen.add(pin)
        if "skip_reason" in dependency:
            verdict.unaudited.append((name, dependency["skip_reason"]))
            continue
        verdict.audited += 1
        for vuln in dependency.get("vulns", []):
            finding = Finding(
                package=name,
                version=dependency["version"],
                id=vuln["id"],
                aliases=tuple(vuln.get("aliases", ())),
                fix_versions=tuple(vuln.get("fix_versions", ())),
            )
            match = next((by_id[i] for i in sorted(finding.ids()) if i in by_id), None)
            if match is None:
                verdict.vulnerable.append(finding)
            else:
                verdict.accepted.append((finding, match))
                used.add(match.id)
    if not verdict.unaudited:
        verdict.unused = [advisory for advisory in by_id.values() if advisory.id not in used]
    return verdict


def run_pip_audit(requirements: Sequence[Path]) -> tuple[dict[str, Any] | None, str]:
    """pip-audit's JSON report of the pinned requirements, or None and what it printed."""
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "audit.json"
        args = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off"]
        for path in requirements:
            args += ["--requirement", str(path)]
        # Every package is pinned, transitive ones too: no resolution, no pip run.
        args += ["--no-deps", "--disable-pip", "--timeout", str(REQUEST_TIMEOUT_SECONDS)]
        args += ["--format", "json", "--output", str(output)]
        try:
            result = subprocess.run(  # noqa: S603 (our interpreter, fixed arguments)
                args,
                capture_output=True,
                text=True,
                timeout=AUDIT_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None, f"pip-audit took more than {AUDIT_TIMEOUT_SECONDS}s"
        if not output.exists() or not output.read_text().strip():
            return None, (result.stderr or result.stdout).strip()
        return json.loads(output.read_text()), result.stderr.strip()


def report_lines(verdict: Verdict, today: datetime.date) -> list[str]:
    lines = []
    for finding in verdict.vulnerable:
        fix = ", ".join(finding.fix_versions) or "none yet"
        aliases = f" ({', '.join(finding.aliases)})" if finding.aliases else ""
        lines.append(
            f"VULNERABLE {finding.package}=={finding.version}: {finding.id}{aliases}; "
            f"fixed in: {fix}"
        )
    for finding, advisory in verdict.accepted:
        due = " - due for review" if today - advisory.accepted_on > REVIEW_AFTER else ""
        lines.append(
            f"accepted {finding.package}=={finding.version}: {advisory.id} "
            f"(since {advisory.accepted_on}{due}): {advisory.reason}"
        )
    for advisory in verdict.unused:
        lines.append(f"unused exception {advisory.id}: no pinned package has it; remove it")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requirements", nargs="*", default=REQUIREMENTS)
    parser.add_argument(
        "--allow-unavailable",
        action="store_true",
        help="warn instead of failing when packages could not be looked up",
    )
    parser.add_argument("--exceptions", type=Path, default=EXCEPTIONS_FILE)
    options = parser.parse_args(argv)

    try:
        accepted = read_exceptions(options.exceptions)
    except (OSError, ValueError) as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2
    unavailable = "WARNING" if options.allow_unavailable else "FAILED"
    failed = 0 if options.allow_unavailable else 1
    report, messages = run_pip_audit([ROOT / path for path in options.requirements])
    if report is None:
        print(f"audit {unavailable}: pip-audit could not look the packages up:\n{messages}")
        return failed
    verdict = judge(report, accepted)
    for line in report_lines(verdict, datetime.date.today()):
        print(line)

    status = 0
    if verdict.vulnerable:
        print(
            f"audit: {len(verdict.vulnerable)} known vulnerabilities. Upgrade the pins, or "
            f"record an exception in {options.exceptions.name} (docs/dependencies.md)."
        )
        status = 1
    if verdict.unaudited:
        package, reason = verdict.unaudited[0]
        print(
            f"audit {unavailable}: {len(verdict.unaudited)} of "
            f"{len(verdict.unaudited) + verdict.audited} packages could not be looked up, so "
            f"their vulnerabilities are unknown (first: {package}: {reason})"
        )
        status = status or failed
    elif not verdict.vulnerable:
        print(
            f"audit: {verdict.audited} pinned packages, no known vulnerabilities"
            f" ({len(verdict.accepted)} accepted in {options.exceptions.name})"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
