"""pyproject.toml describes the package as the tree and the lock are: every Python package
under accounts/, config/ and realtime/ is listed (a new subpackage, management commands or
migrations included, cannot be left out of an install), and every dependency's range admits
the version requirements.txt pins and the tests run against."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = ("accounts", "config", "realtime")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def packages_in_tree() -> set[str]:
    return {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in TOP_LEVEL
        for init in (ROOT / top).rglob("__init__.py")
    }


def pinned(path: Path) -> dict[str, str]:
    """name -> exact version of a requirements file's `name==version` lines."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"not pinned exactly: {line}"
        pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def test_every_package_in_the_tree_is_listed():
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    tree = packages_in_tree()
    assert "realtime.management.commands" in tree
    assert "accounts.migrations" in tree
    assert tree - listed == set(), "add them to [tool.setuptools] packages in pyproject.toml"
    assert listed - tree == set(), "listed in pyproject.toml, but not a package in the tree"


def test_every_dependency_admits_the_pinned_version():
    project = pyproject()["project"]
    pins = pinned(ROOT / "requirements.txt")
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in requirements.txt"
        assert requirement.specifier.contains(pins[name]), (
            f"requirements.txt pins {requirement.name}=={pins[name]}, outside {line!r}"
        )
        for extra in requirement.extras:
            assert canonicalize_name(f"{requirement.name}-{extra}") in pins, (
                f"{line}: the {extra} extra's package is not pinned"
            )


def test_supported_pythons_agree():
    project = pyproject()["project"]
    classifiers = {
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if c.startswith("Programming Language :: Python :: 3.")
    }
    assert classifiers == {"3.11", "3.12", "3.13"}
    assert project["requires-python"] == ">=3.11,<3.14"
    assert pyproject()["tool"]["mypy"]["python_version"] == "3.11"
