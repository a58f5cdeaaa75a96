"""The machine a run measured: CPU, memory, OS, and the versions of every moving part."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from bench.stats import X

# Debian packages of the servers the benchmark drives, as dpkg names them.
DEBIAN_PACKAGES = ("redis-server", "nginx", "postgresql-15")
PYTHON_PACKAGES = ("Django", "channels", "channels-redis", "daphne", "redis", "websockets")


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _dpkg_version(package: str) -> str | None:
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 and result.stdout else None


def describe() -> dict[str, str]:
    """Label -> value, in the order the report prints them."""
    mem_kib = _first("/proc/meminfo", "MemTotal")
    debian = Path("/etc/debian_version")
    info = {
        "CPU": f"{_first('/proc/cpuinfo', 'model name') or platform.processor() or 'unknown'}",
        "cores": str(os.cpu_count()),
        "memory": (f"{int(mem_kib.split()[0]) / 1024 / 1024:.1f} GiB" if mem_kib else "unknown"),
        "OS": (
            f"Debian {debian.read_text().strip()}, Linux {platform.release()}"
            if debian.exists()
            else f"{platform.system()} {platform.release()}"
        ),
        "Python": platform.python_version(),
    }
    for package in DEBIAN_PACKAGES:
        info[package] = _dpkg_version(package) or "not found"
    info["Python packages"] = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in PYTHON_PACKAGES
    )
    return info


def one_line(info: dict[str, str]) -> str:
    cpu = f"{info['cores']} {X} {info['CPU']}"
    return f"{cpu}, {info['memory']}, {info['OS']}, Python {info['Python']}"
