"""Per-stage shares of a py-spy profile of the server (``py-spy record -f raw``).

`python -m bench._stages out.txt` reads collapsed stacks (one ``frame;frame;... count``
a line) and prints, for each ingest stage, the share of samples whose stack passes
through it (the first stage that matches, in the order below, takes the sample).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (stage, a substring of a frame that puts a sample in it), first match wins.
STAGES = [
    ("prepare: parse (stdlib email)", "parse_message"),
    ("prepare: forward extraction", "extract_forward"),
    ("prepare: display (quotes, sanitizer)", "Display.of"),
    ("prepare: other", "_prepare_sync"),
    ("RCPT: logging-address look-up", "handle_RCPT"),
    ("DATA: admission", "admit ("),
    ("DATA: contacts", "match_contacts"),
    ("DATA: store email (ORM)", "_store_email"),
    ("DATA: other ingest work", "_log_admitted"),
    ("DATA: portal, session", "work (core/pipeline.py"),
    ("group commit: BEGIN/COMMIT/savepoints", "group_commit.py"),
    # SQLAlchemy's async layer runs each statement in a greenlet, whose stack py-spy
    # sees without the caller's frames: the statement work of every stage above.
    ("SQLAlchemy (statements in greenlets: compile, execute, rows, ORM flush)",
     "sqlalchemy/"),
    ("sqlite3 in a worker thread (BEGIN, COMMIT)", "_connection_worker_thread"),
    ("SMTP protocol (aiosmtpd, DATA reader)", "aiosmtpd"),
    ("SMTP DATA reader", "smtp_ingest/_data.py"),
    ("HTTP (uvicorn, /metrics)", "uvicorn"),
    ("event loop", "_run_once"),
    ("worker threads (idle or handing over)", "concurrent/futures/thread.py"),
]


def shares(lines: list[str]) -> Counter[str]:
    found: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit() or ";" not in stack:
            continue  # a thread sampled with no Python frame: idle
        stage = next((name for name, mark in STAGES if mark in stack), "other")
        found[stage] += int(count)
    return found


def main(path: str) -> None:
    found = shares(Path(path).read_text().splitlines())
    total = sum(found.values())
    for stage, count in found.most_common():
        print(f"{count / total:6.1%}  {stage}")
    print(f"{total} samples")


if __name__ == "__main__":
    main(sys.argv[1])
