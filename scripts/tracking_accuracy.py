"""Print each labelled request's verdict and the accuracy per class (docs/accuracy.md).

Usage: .venv/bin/python scripts/tracking_accuracy.py
The set is tests/tracking_requests/requests.toml, its sources MANIFEST.toml beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.tracking_requests.labelled import accuracy, load, replay, right


def main() -> int:
    results = {}
    for case in load():
        results[case.id] = verdicts = replay(case)
        for verdict in verdicts:
            mark = "ok  " if right(case, verdict) else "FAIL"
            print(f"{mark} {case.id:<48} {verdict.label:<8} {verdict.reason}")
    print("\n| class | measure | right | hits |\n| --- | --- | ---: | ---: |")
    rows = accuracy(results)
    for klass, kind, ok, n in rows:
        print(f"| {klass} | {kind} | {ok} | {n} |")
    for kind in ("person kept", "machine caught"):
        ok = sum(r[2] for r in rows if r[1] == kind)
        n = sum(r[3] for r in rows if r[1] == kind)
        print(f"| **all** | {kind} | {ok} | {n} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
