"""`make audit` (deploy/audit.py): a known vulnerability fails unless an exception with a date
and a reason accepts it, a package that could not be looked up is never passed as clean, and
the committed exceptions file is well formed. pip-audit's report is given here, as its JSON;
the run against PyPI is `make audit` itself."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from deploy import audit

DJANGO_ADVISORY = {
    "id": "PYSEC-2099-1",
    "aliases": ["CVE-2099-1234", "GHSA-aaaa-bbbb-cccc"],
    "fix_versions": ["5.2.99"],
    "description": "...",
}


def report(*dependencies: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": list(dependencies), "fixes": []}


def clean(name: str, version: str = "1.0") -> dict[str, Any]:
    return {"name": name, "version": version, "vulns": []}


def vulnerable_django() -> dict[str, Any]:
    return {"name": "django", "version": "5.2.19", "vulns": [DJANGO_ADVISORY]}


def exceptions_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "audit-exceptions.txt"
    path.write_text("# comment\n\n" + "".join(f"{line}\n" for line in lines))
    return path


def run(
    monkeypatch: pytest.MonkeyPatch,
    pip_audit_report: dict[str, Any] | None,
    exceptions: Path,
    *args: str,
) -> int:
    monkeypatch.setattr(
        audit, "run_pip_audit", lambda requirements: (pip_audit_report, "no connection")
    )
    return audit.main(["--exceptions", str(exceptions), *args])


def test_the_committed_exceptions_file_is_well_formed():
    for advisory in audit.read_exceptions(audit.EXCEPTIONS_FILE):
        assert advisory.reason.strip()
        assert advisory.accepted_on <= datetime.date.today()


@pytest.mark.parametrize(
    "line",
    [
        "PYSEC-2099-1 2099-01-01",  # no reason
        "PYSEC-2099-1 yesterday the fix is not released",  # no date
        "django 2099-01-01 not an advisory id",
    ],
)
def test_a_malformed_exception_is_refused_with_its_line(tmp_path, line):
    with pytest.raises(ValueError, match=r"audit-exceptions\.txt:3"):
        audit.read_exceptions(exceptions_file(tmp_path, line))


def test_a_known_vulnerability_fails(monkeypatch, tmp_path, capsys):
    status = run(
        monkeypatch, report(clean("channels"), vulnerable_django()), exceptions_file(tmp_path)
    )
    assert status == 1
    out = capsys.readouterr().out
    assert "VULNERABLE django==5.2.19: PYSEC-2099-1" in out
    assert "fixed in: 5.2.99" in out


def test_an_accepted_vulnerability_passes_by_any_alias(monkeypatch, tmp_path, capsys):
    exceptions = exceptions_file(
        tmp_path, f"CVE-2099-1234  {datetime.date.today()}  only the admin's unused widget"
    )
    status = run(monkeypatch, report(clean("channels"), vulnerable_django()), exceptions)
    assert status == 0
    out = capsys.readouterr().out
    assert "accepted django==5.2.19: CVE-2099-1234" in out
    assert "due for review" not in out
    assert "2 pinned packages, no known vulnerabilities (1 accepted" in out


def test_an_old_exception_is_flagged_for_review_and_an_unneeded_one_for_removal(
    monkeypatch, tmp_path, capsys
):
    exceptions = exceptions_file(
        tmp_path,
        "PYSEC-2099-1  2000-01-01  waiting for 5.2.99",
        "GHSA-zzzz-zzzz-zzzz  2000-01-01  fixed long ago",
    )
    assert run(monkeypatch, report(vulnerable_django()), exceptions) == 0
    out = capsys.readouterr().out
    assert "(since 2000-01-01 - due for review)" in out
    assert "unused exception GHSA-zzzz-zzzz-zzzz" in out


def test_packages_that_could_not_be_looked_up_are_not_clean(monkeypatch, tmp_path, capsys):
    skipped = {"name": "django", "skip_reason": "Dependency not found on PyPI"}
    pip_audit_report = report(clean("channels"), skipped)
    exceptions = exceptions_file(tmp_path)
    assert run(monkeypatch, pip_audit_report, exceptions) == 1
    assert "audit FAILED: 1 of 2 packages could not be looked up" in capsys.readouterr().out
    # As `make test` runs it: a warning, not a failure...
    assert run(monkeypatch, pip_audit_report, exceptions, "--allow-unavailable") == 0
    assert "audit WARNING" in capsys.readouterr().out
    # ...but never at the price of a known vulnerability.
    with_vulnerability = report(vulnerable_django(), skipped)
    assert run(monkeypatch, with_vulnerability, exceptions, "--allow-unavailable") == 1


def test_pip_audit_not_running_at_all_is_not_clean(monkeypatch, tmp_path, capsys):
    exceptions = exceptions_file(tmp_path)
    assert run(monkeypatch, None, exceptions) == 1
    assert "pip-audit could not look the packages up:\nno connection" in capsys.readouterr().out
    assert run(monkeypatch, None, exceptions, "--allow-unavailable") == 0
