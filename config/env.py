"""Typed access to the process environment: the only place settings read it.

Every setting that comes from the environment goes through `env`, so a reader can
grep one name to find every knob an operator can turn (docs/deployment.md lists them).
"""

from __future__ import annotations

import builtins
import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Env:
    """Reads variables from a mapping (the process environment by default)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def str(self, name: str, default: str = "") -> str:
        """Return the variable, or `default` when it is unset or empty."""
        return self._environ.get(name) or default

    def required(self, name: builtins.str, why: builtins.str) -> builtins.str:
        """Return the variable; raise ImproperlyConfigured naming it when unset or empty."""
        value = self._environ.get(name, "").strip()
        if not value:
            raise ImproperlyConfigured(f"Set the {name} environment variable: {why}")
        return value

    def bool(self, name: builtins.str, default: bool) -> bool:
        """Return a boolean; raise ImproperlyConfigured on anything but yes/no words."""
        raw = self._environ.get(name)
        if raw is None:
            return default
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")

    def int(self, name: builtins.str, default: int) -> int:
        """Return an integer; raise ImproperlyConfigured when it is not one."""
        raw = self._environ.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            return int(raw)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None

    def float(self, name: builtins.str, default: float) -> float:
        """Return a number; raise ImproperlyConfigured when it is not one."""
        raw = self._environ.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            return float(raw)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None

    def list(
        self, name: builtins.str, default: list[builtins.str] | None = None
    ) -> list[builtins.str]:
        """Return a comma-separated list with blanks dropped."""
        raw = self._environ.get(name)
        if raw is None:
            return list(default or [])
        return [item.strip() for item in raw.split(",") if item.strip()]


env = Env()
