"""Hit addresses shown to users are cut to their network, never the reader's address."""

from __future__ import annotations

import pytest

from extension_api.schemas import truncated_ip


@pytest.mark.parametrize(("ip", "shown"), [
    ("203.0.113.77", "203.0.113.0/24"),
    ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
    ("2002:cb00:714d::1", "203.0.113.0/24"),  # 6to4: its /48 is the whole 203.0.113.77
    ("::ffff:203.0.113.77", "203.0.113.0/24"),
    ("not an address", ""),
])
def test_addresses_are_cut_to_their_network(ip: str, shown: str) -> None:
    """IPv4 /24, IPv6 /48, and an IPv4 address carried inside IPv6 cut as IPv4."""
    assert truncated_ip(ip) == shown
