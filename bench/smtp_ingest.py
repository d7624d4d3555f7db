"""SMTP ingest throughput: 5,000 messages of ~4 KB over 20 parallel sessions.

Baseline: a bare aiosmtpd that accepts and discards, in a subprocess on this machine.
Measured: `inboxlog serve` on SQLite and on PostgreSQL (when available), each a fresh
server with one portal; every message is a BCC'd outgoing email to one of 200 contacts.
Beside throughput and DATA latency: the server's CPU time per message (its process
tree's utime + stime from /proc), SQL statements per message (its
``inboxlog_db_statements`` counter), fsyncs per message (fsync + fdatasync of the
server, from the kernel's tracepoints through ``perf stat``; on PostgreSQL the
database's own are its WAL flushes, one a committed write: the server's
``inboxlog_db_commits`` per message say how many); then the same for 500 messages of
~64 KB. With ``--workers 2`` /metrics sums the counters of every worker (core.metrics),
and the busiest worker's share of the messages is read from each worker's own counter
file (the server's PROMETHEUS_MULTIPROC_DIR, set here).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    FsyncCounter,
    Row,
    Server,
    bare_smtpd,
    cpu_seconds,
    drop_pg_database,
    new_pg_database,
    percentile,
    pg_available,
    process_tree,
    running,
    scrape_counter,
)
from bench.load import LoadResult, load, make_messages

MESSAGES = int(os.environ.get("BENCH_INGEST_MESSAGES", "5000"))
LARGE_MESSAGES = MESSAGES // 10
LARGE_SIZE = 64 * 1024
SESSIONS = 20
PER_SESSION = 25
WARMUP = 100
USER = "rep@ourco.example"


def _contact(n: int) -> str:
    return f"buyer{n % 200}@acme{n % 20}.example"


@dataclass(frozen=True)
class Measured:
    """One timed run against one server: the load's figures and the server's costs."""

    load: LoadResult
    cpu_ms: float  # per message
    statements: float | None = None  # per message
    fsyncs: float | None = None  # per message, of the server process
    commits: float | None = None  # per message: transactions the server committed
    busiest: float | None = None  # --workers: the busiest worker's share of the messages


def ingested_by_process(directory: Path) -> dict[int, float]:
    """Messages each process of a ``--workers`` server has logged so far, by pid, from
    its own file of prometheus_client's multiprocess mode."""
    from prometheus_client.multiprocess import MultiProcessCollector

    found = {}
    for path in directory.glob("counter_*.db"):
        families = MultiProcessCollector.merge(  # type: ignore[no-untyped-call]
            [str(path)], accumulate=False)
        found[int(path.stem.rsplit("_", 1)[1])] = sum(
            sample.value for family in families
            if family.name == "inboxlog_ingested_messages"
            for sample in family.samples if sample.name.endswith("_total"))
    return found


def _send(port: int, rcpt: str, count: int, size: int) -> LoadResult:
    return asyncio.run(load(port, USER, rcpt, make_messages(count, USER, _contact, size=size),
                            sessions=SESSIONS, per_session=PER_SESSION))


def measure(port: int, rcpt: str, pid: int, *, size: int = 4096, count: int = MESSAGES,
            base_url: str | None = None, workers_dir: Path | None = None) -> Measured:
    """Warm up, then send ``count`` messages of ``size`` and read the server's costs."""
    _send(port, rcpt, WARMUP, size)
    statements = scrape_counter(base_url, "inboxlog_db_statements") if base_url else 0.0
    commits = scrape_counter(base_url, "inboxlog_db_commits") if base_url else 0.0
    by_worker = ingested_by_process(workers_dir) if workers_dir else {}
    cpu = cpu_seconds(pid)
    with FsyncCounter(process_tree(pid)) as fsyncs:
        result = _send(port, rcpt, count, size)
        cpu = cpu_seconds(pid) - cpu
    ok = result.ok or 1
    busiest = None
    if workers_dir:
        moved = [n - by_worker.get(p, 0.0) for p, n in ingested_by_process(workers_dir).items()]
        busiest = max(moved) / (sum(moved) or 1)
    return Measured(
        result, cpu * 1000 / ok,
        (scrape_counter(base_url, "inboxlog_db_statements") - statements) / ok
        if base_url else None,
        fsyncs.count / ok if fsyncs.count is not None else None,
        (scrape_counter(base_url, "inboxlog_db_commits") - commits) / ok if base_url else None,
        busiest)


@contextmanager
def inboxlog(data_dir: Path, db_url: str = "", extra_args: tuple[str, ...] = (),
             extra_env: dict[str, str] | None = None) -> Iterator[tuple[Server, str]]:
    with running(Server(data_dir, db_url=db_url, extra_args=extra_args,
                        extra_env=extra_env)) as server:
        yield server, server.new_portal(USER).bcc_address


def _inboxlog_runs(data_dir: Path, db_url: str = "",
                   extra_args: tuple[str, ...] = ()) -> tuple[Measured, Measured]:
    workers_dir = data_dir / "metrics" if "--workers" in extra_args else None
    env = {"PROMETHEUS_MULTIPROC_DIR": str(workers_dir)} if workers_dir else None
    with inboxlog(data_dir, db_url, extra_args, env) as (server, rcpt):
        assert server.process is not None
        small = measure(server.smtp_port, rcpt, server.process.pid, base_url=server.base_url,
                        workers_dir=workers_dir)
        large = measure(server.smtp_port, rcpt, server.process.pid, size=LARGE_SIZE,
                        count=LARGE_MESSAGES, base_url=server.base_url, workers_dir=workers_dir)
    return small, large


def _rows(name: str, run: Measured, bare: Measured, *, goal: float | None,
          cpu_goal: float | None) -> list[Row]:
    result = run.load
    failed = sum(v for k, v in result.codes.items() if k != 250)
    assert not failed, f"{name}: replies other than 250: {result.codes}"
    ratio = result.rate / bare.load.rate
    p99 = percentile(result.latencies, 99) * 1000
    rows = [
        Row("smtp ingest", f"{name}: messages/s", result.rate, bare.load.rate, "msg/s",
            "bare aiosmtpd", f"ratio >= {goal}" if goal else "",
            (ratio >= goal) if goal else None),
        Row("smtp ingest", f"{name}: DATA p50", percentile(result.latencies, 50) * 1000,
            percentile(bare.load.latencies, 50) * 1000, "ms", "bare aiosmtpd"),
        Row("smtp ingest", f"{name}: DATA p99", p99,
            percentile(bare.load.latencies, 99) * 1000, "ms", "bare aiosmtpd",
            "< 100 ms" if goal else "", (p99 < 100) if goal else None),
        Row("smtp ingest", f"{name}: server CPU per message", run.cpu_ms, bare.cpu_ms,
            "ms", "bare aiosmtpd", f"<= {cpu_goal} ms" if cpu_goal else "",
            (run.cpu_ms <= cpu_goal) if cpu_goal else None),
    ]
    if run.statements is not None:
        rows.append(Row("smtp ingest", f"{name}: SQL statements per message",
                        run.statements, 0, "", "none"))
    if run.fsyncs is not None:
        rows.append(Row("smtp ingest", f"{name}: server fsyncs per message",
                        run.fsyncs, bare.fsyncs or 0, "", "bare aiosmtpd"))
    if run.commits is not None:
        rows.append(Row("smtp ingest", f"{name}: commits per message",
                        run.commits, 0, "", "none"))
    if run.busiest is not None:
        rows.append(Row("smtp ingest", f"{name}: busiest worker's share of the messages",
                        run.busiest, 0, "", "none"))
    return rows


def run() -> list[Row]:
    with bare_smtpd() as (port, process):
        bare = measure(port, "anyone@bare.test", process.pid)
        bare_large = measure(port, "anyone@bare.test", process.pid, size=LARGE_SIZE,
                             count=LARGE_MESSAGES)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        small, large = _inboxlog_runs(Path(tmp) / "sqlite")
        rows += _rows("sqlite", small, bare, goal=0.2, cpu_goal=2)
        rows += _rows("sqlite, 64 KB", large, bare_large, goal=None, cpu_goal=None)
        if pg_available():
            one_worker: Measured | None = None
            for workers in pg_workers():
                url = new_pg_database()
                try:
                    args = ("--workers", str(workers)) if workers > 1 else ()
                    small, large = _inboxlog_runs(Path(tmp) / f"pg{workers}", url, args)
                finally:
                    drop_pg_database(url)
                label = "postgresql" + (f" --workers {workers}" if workers > 1 else "")
                rows += _rows(label, small, bare, goal=None, cpu_goal=3 if workers == 1 else None)
                rows += _rows(f"{label}, 64 KB", large, bare_large, goal=None, cpu_goal=None)
                if workers == 1:
                    one_worker = small
                elif one_worker is not None:
                    # The goal: N workers use the node's cores (2 here).
                    ratio = small.load.rate / one_worker.load.rate
                    rows.append(Row(
                        "smtp ingest", f"postgresql --workers {workers} vs one: messages/s",
                        small.load.rate, one_worker.load.rate, "msg/s", "one worker",
                        "ratio >= 1.5", ratio >= 1.5))
    return rows


def pg_workers() -> list[int]:
    """1, and 2 when ``inboxlog serve`` has ``--workers``."""
    import subprocess
    import sys

    found = subprocess.run([sys.executable, "-m", "inboxlog.cli", "serve", "--help"],
                           capture_output=True, text=True, check=False).stdout
    return [1, 2] if "--workers" in found else [1]
