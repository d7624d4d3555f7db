"""The labelled request set (requests.toml, sources in MANIFEST.toml): loading it,
replaying it through the classifier, and the accuracy per class."""

from __future__ import annotations

import tomllib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.tracking_verdicts import History, Hit, Send, Verdict, classify

HERE = Path(__file__).parent
SENT_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    id: str
    klass: str
    label: str  # person | machine, for every hit
    sources: list[str]
    hits: list[dict[str, Any]]


def load() -> list[Case]:
    data = tomllib.loads((HERE / "requests.toml").read_text())
    return [Case(c["id"], c["class"], c["label"], c["sources"], c["hits"]) for c in data["case"]]


def manifest() -> dict[str, Any]:
    return tomllib.loads((HERE / "MANIFEST.toml").read_text())["sources"]


def purpose(headers: dict[str, str]) -> str:
    return " ".join(value for name, value in headers.items()
                    if name.lower() in ("purpose", "sec-purpose", "x-purpose", "x-moz"))


def to_hit(raw: dict[str, Any], sent_at: datetime = SENT_AT) -> Hit:
    return Hit(raw["kind"], sent_at + timedelta(seconds=raw["at"]), raw["ip"], raw["agent"],
               raw.get("method", "GET"), raw.get("link"), purpose(raw.get("headers", {})))


def replay(case: Case) -> list[Verdict]:
    """The verdicts of a case's hits, classified as the recorder would in one batch."""
    hits = sorted((to_hit(raw) for raw in case.hits), key=lambda h: h.at)
    history, send, verdicts = History(), Send(sent_at=SENT_AT), []
    for i, hit in enumerate(hits):
        verdict = classify(hit, history=history, send=send, upcoming=hits[i + 1:])
        history.add(hit, verdict)
        verdicts.append(verdict)
    return verdicts


def right(case: Case, verdict: Verdict) -> bool:
    return verdict.machine == (case.label == "machine")


def accuracy(results: dict[str, list[Verdict]]) -> list[tuple[str, str, int, int]]:
    """(class, person kept | machine caught, right, hits) per class."""
    cases = {case.id: case for case in load()}
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for case_id, verdicts in results.items():
        case = cases[case_id]
        kind = "person kept" if case.label == "person" else "machine caught"
        for verdict in verdicts:
            tally[case.klass, kind][0] += right(case, verdict)
            tally[case.klass, kind][1] += 1
    return [(k, kind, ok, n) for (k, kind), (ok, n) in tally.items()]
