"""Published address ranges: the data files, the lookup, and the refresh script's readers."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from core.tracking_clients import identify
from core.tracking_ranges import Ranges, parse, published

ROOT = Path(__file__).resolve().parents[2]


def _refresh_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "refresh_tracking_ranges", ROOT / "scripts" / "refresh_tracking_ranges.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_shipped_range_set_names_its_source_and_date() -> None:
    """Each data file says where its ranges were published and when they were taken."""
    sets = published().sets
    assert {s.name for s in sets} == {"apple", "google", "yahoo", "microsoft", "proofpoint",
                                       "mimecast", "barracuda"}
    for range_set in sets:
        assert range_set.networks, range_set.name
        assert all(url.startswith("https://") for url in range_set.sources), range_set.name
        assert len(range_set.date) == 10 and range_set.kind in (
            "apple", "google", "yahoo", "scanner"), range_set.name


@pytest.mark.parametrize(("ip", "name"), [
    ("17.58.101.12", "apple"), ("::ffff:17.1.2.3", "apple"), ("66.249.84.21", "google"),
    ("2a00:1450:4001::5", "google"), ("40.107.22.5", "microsoft"), ("52.103.1.1", "microsoft"),
    ("2a01:111:f400:7e00::1", "microsoft"), ("148.163.150.20", "proofpoint"),
    ("205.139.110.61", "mimecast"), ("64.235.150.3", "barracuda"), ("98.137.11.163", "yahoo"),
    ("203.0.113.7", None), ("not an address", None), ("", None),
])
def test_lookup(ip: str, name: str | None) -> None:
    """An address is found in the set that publishes its range, and nowhere else."""
    found = published().lookup(ip)
    assert (found.name if found else None) == name


def test_nested_ranges_find_the_set_that_holds_the_address() -> None:
    """A small range inside a large one does not hide the large one's other addresses."""
    outer = parse("# name: a\n# label: A\n# kind: scanner\n# source: https://a.example\n"
                  "# date: 2026-12-01\n10.0.0.0/8\n")
    inner = parse("# name: b\n# label: B\n# kind: apple\n# source: https://b.example\n"
                  "# date: 2026-12-01\n10.1.0.0/16\n")
    ranges = Ranges([outer, inner])
    assert [ranges.lookup(ip).name for ip in ("10.1.2.3", "10.200.0.1", "10.0.0.1")] == [
        "b", "a", "a"]
    with pytest.raises(ValueError, match="without"):
        parse("10.0.0.0/8\n")


def test_a_large_range_is_found_past_many_ranges_nested_in_it() -> None:
    """Nineteen ranges of another set inside 17.0.0.0/8 (as a refreshed list may hold)
    do not hide the large range from the addresses after them."""
    outer = parse("# name: a\n# label: A\n# kind: apple\n# source: https://a.example\n"
                  "# date: 2026-12-01\n17.0.0.0/8\n2001:db8::/32\n")
    inner = parse("# name: b\n# label: B\n# kind: scanner\n# source: https://b.example\n"
                  "# date: 2026-12-01\n" + "".join(f"17.{n}.0.0/16\n" for n in range(1, 20))
                  + "".join(f"2001:db8:{n:x}::/48\n" for n in range(1, 20)))
    ranges = Ranges([outer, inner])
    found = {ip: getattr(ranges.lookup(ip), "name", None) for ip in (
        "17.200.0.1", "17.5.9.9", "17.0.0.1", "2001:db8:ff::1", "2001:db8:3::1", "18.0.0.1")}
    assert found == {"17.200.0.1": "a", "17.5.9.9": "b", "17.0.0.1": "a",
                     "2001:db8:ff::1": "a", "2001:db8:3::1": "b", "18.0.0.1": None}


def test_refresh_readers() -> None:
    """The refresh script reads goog.json, the endpoints service and vendor pages."""
    refresh = _refresh_script()
    goog = json.dumps({"prefixes": [{"ipv4Prefix": "8.8.4.0/24"},
                                    {"ipv6Prefix": "2001:4860::/32"}]})
    assert refresh.google_prefixes(goog) == ["8.8.4.0/24", "2001:4860::/32"]
    endpoints = json.dumps([{"id": 9, "ips": ["40.96.0.0/13"]},
                            {"id": 10, "ips": ["40.92.0.0/15", "2a01:111:f400::/48"]}])
    assert refresh.microsoft_eop(endpoints) == ["40.92.0.0/15", "2a01:111:f400::/48"]
    page = "<td>205.139.110.0/24</td> <td>999.1.1.1/24</td> 2a01:111:f403::/48, 205.139.110.0/24"
    assert refresh.cidrs_in_text(page) == ["205.139.110.0/24", "2a01:111:f403::/48"]
    assert refresh.collapse(["17.0.0.0/9", "17.128.0.0/9", "2a01::/32"]) == [
        "17.0.0.0/8", "2a01::/32"]
    text = (ROOT / "core/data/tracking_ranges/barracuda.txt").read_text()
    rewritten = refresh.rewrite(text, ["64.235.144.0/20"], "2027-01-02")
    assert parse(rewritten).date == "2027-01-02"
    assert [str(n) for n in parse(rewritten).networks] == ["64.235.144.0/20"]


def test_refresh_reads_a_page_with_long_hex_runs_at_once() -> None:
    """A vendor page with a long run of hex digits and colons (4 KB of it took seconds of
    backtracking) is read at once, and its CIDRs, IPv6 ones included, are still found."""
    refresh = _refresh_script()
    page = ("a:" * 3000 + " 2a01:111:f400::/48 <td>2001:db8:0:1:2:3:4:5/128</td> ::/0 "
            "fe80::1/64, 10.0.0.0/8")
    started = time.monotonic()
    found = refresh.cidrs_in_text(page)
    assert time.monotonic() - started < 0.5
    assert found == ["2a01:111:f400::/48", "2001:db8:0:1:2:3:4:5/128", "fe80::/64",
                     "10.0.0.0/8"]


@pytest.mark.parametrize(("agent", "family"), [
    ("Mozilla/4.0 (compatible; ms-office; MSOffice 16)", "Outlook desktop (Windows)"),
    ("Microsoft Office Outlook/16.100.824 (Mac OS/15.6.1; Desktop; en-US; NonAppStore; "
     "Apple/Mac16,7)", "Outlook for Mac"),
    ("Superhuman", "Superhuman"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:24.0) Gecko/20100101 Thunderbird/24.2.0", "Thunderbird"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     "bot or scanner (Googlebot)"),
    ("python-requests/2.31", "bot or scanner (Python Requests)"),
    ("", "no user agent"),
])
def test_clients_are_named(agent: str, family: str) -> None:
    """ua-parser and the mail-client patterns name the client a person sees."""
    assert identify(agent).family == family


def test_a_huge_agent_is_identified_at_once() -> None:
    """A request's 70 KB agent of repeated tokens is read to its first 1000 characters:
    no pattern backtracks over all of it (this took seconds)."""
    started = time.monotonic()
    for token in ("Android", "Android ;", "; SM-", "Mail/1 "):
        assert identify(token * 10_000).kind == "unknown"
    assert time.monotonic() - started < 0.5
