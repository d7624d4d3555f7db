"""Print per-format forward-extraction results and overall accuracy over the corpus.

Usage: .venv/bin/python scripts/forward_accuracy.py
The expectations live in tests/core/test_forwards.py (EXPECTED), the one source of truth.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.core.test_forwards import EXPECTED, extract, matches


def main() -> int:
    by_format: dict[str, list[bool]] = defaultdict(list)
    for name in sorted(EXPECTED):
        result = extract(name)
        ok = matches(name, result)
        fmt = result.original.format if result.original else "unparseable"
        by_format[fmt].append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name:<34} {fmt:<18} {result.reason or ''}")
    print()
    for fmt, outcomes in sorted(by_format.items()):
        print(f"{fmt:<18} {sum(outcomes)}/{len(outcomes)}")
    total = [ok for outcomes in by_format.values() for ok in outcomes]
    print(f"overall accuracy: {sum(total)}/{len(total)} = {sum(total) / len(total):.1%}")
    return 0 if all(total) else 1


if __name__ == "__main__":
    raise SystemExit(main())
