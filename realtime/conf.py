"""Typed view of settings.REALTIME (defaults and the reason for each live in config/settings)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


@dataclass(frozen=True, slots=True)
class RealtimeSettings:
    ALLOWED_ORIGINS: tuple[str, ...]
    ALLOW_SAME_ORIGIN: bool
    ALLOW_NO_ORIGIN_WITH_HEADER_AUTH: bool
    SUBPROTOCOL: str
    TICKET_TTL_SECONDS: int
    HISTORY_LIMIT: int
    HISTORY_MAX_BYTES: int
    MAX_BODY_CHARS: int
    MAX_FRAME_BYTES: int
    TRANSPORT_MAX_MESSAGE_BYTES: int
    MAX_ROOMS_PER_CONNECTION: int
    RATE_BURST: int
    RATE_PER_SECOND: float
    RATE_STRIKES_BEFORE_CLOSE: int
    MAX_PROTOCOL_ERRORS: int
    TOKEN_GRACE_SECONDS: int
    MAX_CONNECTIONS_PER_USER: int
    MAX_CONNECTIONS_PER_ADDRESS: int
    CONNECTION_TTL_SECONDS: int
    REDIS_CHECK_SECONDS: float
    PRESENCE_TTL_SECONDS: int
    TYPING_INTERVAL_SECONDS: float
    OUTPUT_MAX_BYTES: int
    OUTPUT_MAX_FRAMES: int


@cache
def realtime_settings() -> RealtimeSettings:
    """The REALTIME settings, validated once; a missing or unknown key raises TypeError."""
    values: dict[str, Any] = dict(settings.REALTIME)
    values["ALLOWED_ORIGINS"] = tuple(o.rstrip("/").lower() for o in values["ALLOWED_ORIGINS"])
    return RealtimeSettings(**values)


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs: object) -> None:
    if setting == "REALTIME":
        realtime_settings.cache_clear()
