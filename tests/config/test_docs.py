"""docs/security.md maps every threat, and docs/reliability.md every delivery guarantee, to
the tests that prove it: each test they name must exist, or the map is a promise nobody
checks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAPS = ("security.md", "reliability.md")
# `tests/x/test_y.py::test_z`, `test_y.py::test_z`, `::test_z` (same file as the last one),
# or a whole file `tests/x/test_y.py`.
REFERENCE = re.compile(r"`((?:tests/[\w/]+\.py|test_\w+\.py)?)(?:::(\w+))?`")


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def resolve(name: str, known: dict[str, Path]) -> Path:
    if name.startswith("tests/"):
        return ROOT / name
    return known[name]


@pytest.mark.parametrize("document", MAPS)
def test_every_test_named_in_the_map_exists(document):
    files = {path.name: path for path in (ROOT / "tests").rglob("test_*.py")}
    missing = []
    for row in (ROOT / "docs" / document).read_text().splitlines():
        if not row.startswith("|"):
            continue
        current: Path | None = None
        for file_part, test in REFERENCE.findall(row.split("|")[-2]):
            if file_part:
                current = resolve(file_part, files)
                if not current.exists():
                    missing.append(file_part)
                    continue
            if test and (current is None or test not in defined_tests(current)):
                missing.append(f"{current and current.name}::{test}")
    assert missing == []
