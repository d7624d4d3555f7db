"""Download the published address ranges again into core/data/tracking_ranges/.

Usage: .venv/bin/python scripts/refresh_tracking_ranges.py [NAME ...]   (default: all)

Each data file names its sources in ``# source:`` lines; this script knows how to read
each kind of source (Apple's egress CSV, Google's goog.json, Microsoft's endpoints web
service, and the vendors' help pages, from which every CIDR on the page is taken). It
rewrites the CIDRs and the ``# date:`` line and keeps the rest of the header; a source
that answers nothing usable leaves its file as it was. Review the diff before committing:
a vendor page may list more than its scanners.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import sys
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "core" / "data" / "tracking_ranges"
# IPv6: up to eight groups of at most four digits, so a long run of hex digits and
# colons on a page (a hash, a blob) costs linear time, not cubic backtracking.
_CIDR = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}/\d{1,2}\b"
                   r"|\b[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}/\d{1,3}\b")
# Always kept: Apple's own network, which the egress list does not repeat.
_KEEP = {"apple": ["17.0.0.0/8"]}


def cidrs_in_text(text: str) -> list[str]:
    """Every valid CIDR in a page or a CSV, in order, once."""
    found = []
    for match in _CIDR.findall(text):
        try:
            found.append(str(ipaddress.ip_network(match, strict=False)))
        except ValueError:
            continue
    return list(dict.fromkeys(found))


def google_prefixes(text: str) -> list[str]:
    """goog.json: {"prefixes": [{"ipv4Prefix": ...} | {"ipv6Prefix": ...}]}."""
    return [p.get("ipv4Prefix") or p["ipv6Prefix"] for p in json.loads(text)["prefixes"]]


def microsoft_eop(text: str) -> list[str]:
    """The endpoints web service: the IPs of endpoint set 10 (Exchange Online Protection)."""
    return [ip for entry in json.loads(text) if entry.get("id") == 10
            for ip in entry.get("ips", [])]


def _feed(url: str) -> bool:
    """A machine-readable list, preferred over the pages around it (Microsoft's page,
    for one, lists every Microsoft 365 range, not only the scanners')."""
    return any(key in url for key in ("goog.json", "endpoints.office.com", ".csv"))


def collapse(cidrs: list[str]) -> list[str]:
    """Fewer, larger ranges covering the same addresses (Apple's list has many)."""
    networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    return ([str(n) for n in ipaddress.collapse_addresses(v4)]
            + [str(n) for n in ipaddress.collapse_addresses(v6)])


def _reader(url: str) -> Callable[[str], list[str]]:
    if "goog.json" in url:
        return google_prefixes
    if "endpoints.office.com" in url:
        return microsoft_eop
    return cidrs_in_text


def _fetch(url: str) -> str:
    if "endpoints.office.com" in url:
        url = re.sub(r"clientrequestid=[^&]*", f"clientrequestid={uuid.uuid4()}", url)
    request = urllib.request.Request(url, headers={"User-Agent": "inboxlog-range-refresh"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return str(response.read().decode("utf-8", errors="replace"))


def rewrite(text: str, cidrs: list[str], today: str) -> str:
    """The data file with new CIDRs and date, its other header lines kept."""
    header = [line for line in text.splitlines() if line.startswith("#")]
    header = [f"# date: {today}" if line.startswith("# date:") else line for line in header]
    return "\n".join([*header, *cidrs]) + "\n"


def refresh(path: Path) -> int:
    text = path.read_text()
    sources = re.findall(r"^# source: (\S+)", text, re.MULTILINE)
    sources = [url for url in sources if _feed(url)] or sources
    cidrs: list[str] = list(_KEEP.get(path.stem, []))
    for url in sources:
        try:
            cidrs += _reader(url)(_fetch(url))
        except (OSError, ValueError, KeyError) as exc:
            print(f"{path.stem}: {url}: {exc}", file=sys.stderr)
    if len(set(cidrs)) <= len(_KEEP.get(path.stem, [])):
        print(f"{path.stem}: nothing usable downloaded; left as it was", file=sys.stderr)
        return 0
    cidrs = collapse(cidrs)
    path.write_text(rewrite(text, cidrs, datetime.date.today().isoformat()))
    return len(cidrs)


def main(names: list[str]) -> int:
    for path in sorted(DATA.glob("*.txt")):
        if not names or path.stem in names:
            print(f"{path.stem}: {refresh(path)} ranges")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
