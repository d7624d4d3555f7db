"""The published address ranges of mail proxies and link scanners, and looking an IP up.

Each range set is a data file in ``core/data/tracking_ranges/``: ``# key: value`` header
lines (name, label, kind, one or more source URLs, the date it was taken), then one
CIDR a line. ``scripts/refresh_tracking_ranges.py`` downloads them again from their
sources. ``kind`` says what a hit from there means to classification: ``apple`` (Mail
Privacy Protection proxies), ``google`` (Gmail's image proxy), ``yahoo`` (Yahoo's image
proxy) or ``scanner`` (a security gateway following links).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from core.types import RangeKind

_PACKAGE = "core.data.tracking_ranges"


@dataclass(frozen=True)
class RangeSet:
    name: str
    label: str
    kind: RangeKind
    sources: tuple[str, ...]
    date: str
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(repr=False)


def parse(text: str) -> RangeSet:
    """One data file's range set; raises ValueError on a bad header (an unknown kind
    too) or CIDR."""
    header: dict[str, list[str]] = {}
    networks = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep and key.strip() and not raw.startswith("#  "):
                header.setdefault(key.strip(), []).append(value.strip())
        elif line:
            networks.append(ipaddress.ip_network(line, strict=False))
    missing = {"name", "label", "kind", "source", "date"} - set(header)
    if missing:
        raise ValueError(f"range file without {', '.join(sorted(missing))}")
    return RangeSet(header["name"][0], header["label"][0], RangeKind(header["kind"][0]),
                    tuple(header["source"]), header["date"][0], tuple(networks))


class Ranges:
    """Looks addresses up in range sets: one dictionary per prefix length in use, so a
    lookup costs one probe per length (at most 33 or 129), with ten ranges or a hundred
    thousand. CIDR ranges either nest or do not meet: the longest prefix holding the
    address is the most specific range, whatever else starts before it."""

    def __init__(self, sets: list[RangeSet]) -> None:
        self.sets = sets
        by_prefix: dict[tuple[int, int], dict[int, RangeSet]] = {}
        for range_set in sets:
            for network in range_set.networks:
                found = by_prefix.setdefault((network.version, network.prefixlen), {})
                found.setdefault(int(network.network_address), range_set)
        # Per family, (mask, networks by address) with the longest prefixes first: the
        # first that holds the address is the answer.
        self._prefixes: dict[int, list[tuple[int, dict[int, RangeSet]]]] = {4: [], 6: []}
        for (version, length), networks in sorted(by_prefix.items(), key=lambda kv: -kv[0][1]):
            bits = 32 if version == 4 else 128
            self._prefixes[version].append(((1 << bits) - (1 << (bits - length)), networks))

    def lookup(self, ip: str) -> RangeSet | None:
        """The range set holding ``ip``, or None (also for something not an address)."""
        try:
            address = ipaddress.ip_address(ip.strip())
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        value = int(address)
        for mask, networks in self._prefixes[address.version]:
            found = networks.get(value & mask)
            if found is not None:
                return found
        return None


@cache
def published() -> Ranges:
    """The range sets shipped with inboxlog (read once per process)."""
    sets = [parse(entry.read_text(encoding="utf-8"))
            for entry in sorted(resources.files(_PACKAGE).iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".txt")]
    return Ranges(sets)
