"""Who may read /metrics (config.metrics); what it serves is tested on real daphne
(tests/services/test_metrics.py)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.metrics import is_allowed, parse_networks


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("10.1.2.3", True),
        ("10.255.255.255", True),
        ("11.0.0.1", False),
        ("192.168.0.1", False),
        ("::2", False),
        ("", False),
        (None, False),
        ("not-an-address", False),
        ("10.0.0.1, 127.0.0.1", False),
    ],
)
def test_only_addresses_in_the_allowed_networks_may_read(address, allowed):
    networks = parse_networks(["127.0.0.1", "::1", "10.0.0.0/8"])

    assert is_allowed(address, networks) is allowed


def test_no_network_allows_nobody():
    assert is_allowed("127.0.0.1", parse_networks([])) is False


@pytest.mark.parametrize("value", ["10.0.0.0/33", "localhost", "*", "127.0.0.1/8/8"])
def test_a_typo_in_the_allowed_networks_stops_the_start(value):
    with pytest.raises(ImproperlyConfigured, match="METRICS_ALLOWED_NETWORKS"):
        parse_networks(["127.0.0.1", value])
