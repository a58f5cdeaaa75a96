"""config.redis_hosts: the environment's Redis variables turned into channels-redis `hosts`
and redis-py options, and the contradictions refused before anything connects.

The connections themselves are proven against real redis-server processes in
tests/services/ (test_redis_tls.py, test_layer_shards.py, test_layer_sentinel.py); this is
the parsing they rely on, and production's view of it (tests/config/test_settings.py runs
the settings in subprocesses).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import redis_hosts

CA = {"ssl_ca_certs": "/etc/chat/redis-ca.pem"}


def hosts(**overrides: Any) -> list[dict[str, Any]]:
    options: dict[str, Any] = {
        "redis_url": "redis://state:6379/0",
        "urls": [],
        "sentinels": [],
        "masters": [],
        "sentinel_password": "",
        "master_password": "",
        "sentinel_tls": False,
        "tls": {},
        **overrides,
    }
    return redis_hosts.layer_hosts(**options)


def test_tls_options_name_redis_py_arguments_and_leave_out_unset_files():
    assert redis_hosts.tls_options(ca_file="", cert_file="", key_file="") == {}
    assert redis_hosts.tls_options(ca_file="/ca.pem", cert_file="/c.pem", key_file="/k.pem") == {
        "ssl_ca_certs": "/ca.pem",
        "ssl_certfile": "/c.pem",
        "ssl_keyfile": "/k.pem",
    }
    # A certificate file may hold its key too.
    assert redis_hosts.tls_options(ca_file="", cert_file="/both.pem", key_file="") == {
        "ssl_certfile": "/both.pem"
    }


def test_a_client_key_without_its_certificate_is_refused():
    with pytest.raises(ImproperlyConfigured, match="REDIS_TLS_KEY_FILE is set without"):
        redis_hosts.tls_options(ca_file="", cert_file="", key_file="/k.pem")


def test_tls_options_go_with_rediss_urls_only():
    assert redis_hosts.url_options("rediss://r:6380/0", CA) == CA
    # redis-py's plain connections refuse ssl_* arguments.
    assert redis_hosts.url_options("redis://r:6379/0", CA) == {}
    assert redis_hosts.url_options("unix:///run/redis.sock", CA) == {}


def test_the_layer_uses_redis_url_unless_told_otherwise():
    assert hosts() == [{"address": "redis://state:6379/0"}]
    assert hosts(redis_url="rediss://state:6380/0", tls=CA) == [
        {"address": "rediss://state:6380/0", **CA}
    ]


def test_without_redis_url_there_is_no_layer_host():
    assert hosts(redis_url="") == []


def test_shards_are_listed_in_order_each_with_its_own_tls():
    assert hosts(
        redis_url="rediss://state:6380/0",
        urls=["rediss://a:6380/0", "redis://b:6379/0"],
        tls=CA,
    ) == [{"address": "rediss://a:6380/0", **CA}, {"address": "redis://b:6379/0"}]


def test_sentinel_masters_become_one_shard_each():
    assert hosts(
        sentinels=["10.0.0.1:26379", "[fd00::2]:26380"],
        masters=["chat-a", "chat-b"],
        sentinel_password="s3ntinel",
        master_password="m4ster",
        sentinel_tls=True,
        tls=CA,
    ) == [
        {
            "sentinels": [("10.0.0.1", 26379), ("fd00::2", 26380)],
            "master_name": name,
            "sentinel_kwargs": {"ssl": True, **CA, "password": "s3ntinel"},
            "ssl": True,
            **CA,
            "password": "m4ster",
        }
        for name in ("chat-a", "chat-b")
    ]


def test_sentinel_without_tls_or_passwords():
    assert hosts(sentinels=["s1:26379"], masters=["chat"]) == [
        {"sentinels": [("s1", 26379)], "master_name": "chat", "sentinel_kwargs": {}}
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sentinels": ["s1:26379"]}, "Set the REDIS_SENTINEL_MASTER environment variable"),
        ({"sentinels": ["s1"], "masters": ["m"]}, "REDIS_SENTINELS must be host:port"),
        ({"sentinels": ["s1:port"], "masters": ["m"]}, "REDIS_SENTINELS must be host:port"),
        (
            {"sentinels": ["s1:26379"], "masters": ["m"], "urls": ["redis://a:6379"]},
            "Set CHANNEL_LAYER_REDIS_URLS or REDIS_SENTINELS, not both",
        ),
        ({"redis_url": "", "urls": ["redis://a:6379"]}, "Set the REDIS_URL environment"),
        (
            {"redis_url": "", "sentinels": ["s1:26379"], "masters": ["m"]},
            "Set the REDIS_URL environment",
        ),
        # TLS files with nothing to use them: an operator who believes Redis is encrypted.
        ({"tls": CA}, "apply to rediss:// URLs"),
        ({"tls": CA, "sentinels": ["s1:26379"], "masters": ["m"]}, "apply to rediss:// URLs"),
    ],
)
def test_contradictory_settings_are_refused_naming_the_variable(overrides, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        hosts(**overrides)


def test_tls_files_for_a_shard_only_are_accepted():
    assert hosts(urls=["rediss://a:6380/0"], tls=CA) == [{"address": "rediss://a:6380/0", **CA}]


@pytest.mark.parametrize(
    "key",
    [
        "change-me",
        "x" * 31,
        # Long, but a placeholder: too few distinct characters to be random.
        "a" * 64,
        "abcabcabcabcabcabcabcabcabcabcabcabc",
    ],
)
def test_weak_encryption_keys_are_refused_naming_the_position(key):
    with pytest.raises(ImproperlyConfigured, match="key 2 is too weak"):
        redis_hosts.check_encryption_keys(["R4nd0m-k3y-0f-f0rty-thr33-ch4r4ct3rs-abcdefg", key])


def test_random_encryption_keys_pass():
    redis_hosts.check_encryption_keys(
        ["mq3Vb2kqWf7sJXw0cA1-zYt8HnR5uLdE9gPoKiU4xBs", "0123456789abcdef0123456789abcdef"]
    )
