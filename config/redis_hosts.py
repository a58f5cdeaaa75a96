"""Which Redis servers the project talks to, and how: TLS options per URL, and the channel
layer's servers (one, several shards, or masters found through Redis Sentinel).

Pure functions of what config/settings/base.py read from the environment; docs/deployment.md
lists the variables. Two kinds of Redis traffic:

* The project's own state (connection slots, presence, the epoch key, tickets, throttles,
  the cache) lives on REDIS_URL alone: it needs one consistent view across processes.
* The channel layer's pub/sub may be spread over several servers: channels-redis hashes each
  group name onto one of its `hosts` (the same list, in the same order, on every process).

A `hosts` entry is what channels-redis accepts: {"address": url, **redis-py options}, or a
Sentinel entry {"sentinels": [(host, port)], "master_name": name, "sentinel_kwargs": {...},
**options for the master's connections}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

TLS_SCHEME = "rediss"
# Fernet keys are derived from each key by SHA-256 (channels-redis), so any string works;
# production refuses one shorter than this: 32 random characters are ~190 bits.
ENCRYPTION_KEY_MIN_LENGTH = 32
# ...or made of fewer distinct characters ("aaaa...", "abababab..."): a placeholder, not a key.
ENCRYPTION_KEY_MIN_DISTINCT = 8


def tls_options(*, ca_file: str, cert_file: str, key_file: str) -> dict[str, str]:
    """redis-py's ssl_* options from REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE and
    REDIS_TLS_KEY_FILE (unset ones left out: redis-py then verifies against the system's
    CAs). Raises ImproperlyConfigured for a client key without its certificate."""
    if key_file and not cert_file:
        raise ImproperlyConfigured(
            "REDIS_TLS_KEY_FILE is set without REDIS_TLS_CERT_FILE: a client key needs the "
            "client certificate it belongs to"
        )
    options = {"ssl_ca_certs": ca_file, "ssl_certfile": cert_file, "ssl_keyfile": key_file}
    return {name: value for name, value in options.items() if value}


def is_tls(url: str) -> bool:
    return urlsplit(url).scheme == TLS_SCHEME


def url_options(url: str, tls: Mapping[str, str]) -> dict[str, str]:
    """The options to pass with `url`: the TLS ones for rediss://, none otherwise (redis-py's
    plain connections refuse ssl_* arguments)."""
    return dict(tls) if is_tls(url) else {}


def url_hosts(urls: list[str], tls: Mapping[str, str]) -> list[dict[str, Any]]:
    """channels-redis `hosts` for redis:// and rediss:// URLs, one shard each."""
    return [{"address": url, **url_options(url, tls)} for url in urls]


def parse_sentinels(entries: list[str]) -> list[tuple[str, int]]:
    """REDIS_SENTINELS's host:port entries ([v6]:port too) as (host, port) pairs."""
    sentinels = []
    for entry in entries:
        host, _, port = entry.rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit():
            raise ImproperlyConfigured(
                f"REDIS_SENTINELS must be host:port entries separated by commas, not {entry!r}"
            )
        sentinels.append((host, int(port)))
    return sentinels


def sentinel_hosts(
    *,
    sentinels: list[tuple[str, int]],
    masters: list[str],
    sentinel_password: str,
    master_password: str,
    tls: Mapping[str, str] | None,
) -> list[dict[str, Any]]:
    """channels-redis `hosts` for masters found through Sentinel, one shard per master name.

    `tls` (None for plain TCP) applies to the sentinels and the masters alike."""
    if not masters:
        raise ImproperlyConfigured(
            "Set the REDIS_SENTINEL_MASTER environment variable: the name (or names, "
            "comma-separated, one per shard) the sentinels monitor"
        )
    transport: dict[str, Any] = {} if tls is None else {"ssl": True, **tls}
    sentinel_kwargs = dict(transport)
    if sentinel_password:
        sentinel_kwargs["password"] = sentinel_password
    master_options = dict(transport)
    if master_password:
        master_options["password"] = master_password
    return [
        {
            "sentinels": sentinels,
            "master_name": master,
            "sentinel_kwargs": sentinel_kwargs,
            **master_options,
        }
        for master in masters
    ]


def check_encryption_keys(keys: list[str]) -> None:
    """Raise ImproperlyConfigured for a CHANNEL_LAYER_ENCRYPTION_KEYS key too short or too
    repetitive to be random (production settings call this)."""
    for position, key in enumerate(keys, start=1):
        if len(key) < ENCRYPTION_KEY_MIN_LENGTH or len(set(key)) < ENCRYPTION_KEY_MIN_DISTINCT:
            raise ImproperlyConfigured(
                f"CHANNEL_LAYER_ENCRYPTION_KEYS: key {position} is too weak; each key must be "
                f"at least {ENCRYPTION_KEY_MIN_LENGTH} random characters, e.g. from "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )


def layer_hosts(
    *,
    redis_url: str,
    urls: list[str],
    sentinels: list[str],
    masters: list[str],
    sentinel_password: str,
    master_password: str,
    sentinel_tls: bool,
    tls: Mapping[str, str],
) -> list[dict[str, Any]]:
    """The channel layer's `hosts`: CHANNEL_LAYER_REDIS_URLS's shards, REDIS_SENTINELS's
    masters, or REDIS_URL alone (none without REDIS_URL). Raises ImproperlyConfigured for
    settings that contradict each other, and for TLS files that no connection would use."""
    if urls and sentinels:
        raise ImproperlyConfigured(
            "Set CHANNEL_LAYER_REDIS_URLS or REDIS_SENTINELS, not both: the channel layer "
            "uses either fixed servers or masters found through Sentinel"
        )
    if (urls or sentinels) and not redis_url:
        raise ImproperlyConfigured(
            "Set the REDIS_URL environment variable too: connection counts, presence, "
            "tickets and the cache live there, whatever servers the channel layer uses"
        )
    used = sentinel_tls or any(is_tls(url) for url in (redis_url, *urls) if url)
    if tls and not used:
        raise ImproperlyConfigured(
            "REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE apply to rediss:// "
            "URLs (and to Sentinel with REDIS_SENTINEL_TLS), and none is: write rediss:// "
            "for TLS, or unset them"
        )
    if sentinels:
        return sentinel_hosts(
            sentinels=parse_sentinels(sentinels),
            masters=masters,
            sentinel_password=sentinel_password,
            master_password=master_password,
            tls=tls if sentinel_tls else None,
        )
    # No REDIS_URL: the in-memory layer, no hosts.
    return url_hosts(urls or [redis_url], tls) if redis_url else []
