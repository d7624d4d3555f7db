"""Who used the cores while `serve` on PostgreSQL ingested, with 1 and with N workers.

`python -m bench.workers_cpu 1 2 1 2` (not in `make bench`; needs INBOXLOG_TEST_PG_URL)
runs one fresh server per argument (its number of workers), sends 100 warm-up then
``BENCH_WORKERS_MESSAGES`` (1,500) messages of ~4 KB over 20 sessions from this process,
and prints one JSON line per run:

- ``cpu_ms_per_message``: utime + stime from ``/proc/<pid>/stat`` across the timed
  send, per message, of each server process (``worker:<pid>``; the supervisor), the
  PostgreSQL backends of the run's database and the cluster's own processes, this load
  client, and every ``other`` process alive at both ends (other work on the machine);
- ``machine_busy_cores``: the whole machine's busy time over the wall time
  (``/proc/stat``), which also counts processes that started and ended meanwhile;
- statements and commits per message (the server's /metrics, every worker's counts);
- ``messages_by_worker``: each worker's own counter file (PROMETHEUS_MULTIPROC_DIR);
- ``pg_sessions``: the run database's sessions in ``pg_stat_activity``, sampled every
  50 ms, by state and wait event (a mean number of sessions in each).

Set ``SPY=<seconds>`` to record each worker with py-spy (``--idle``, 100 Hz) into
``spy-<workers>-<pid>.txt`` for ``python -m bench._stages``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (
    Server,
    drop_pg_database,
    new_pg_database,
    process_tree,
    running,
    scrape_counter,
)
from bench.load import load, make_messages
from bench.smtp_ingest import USER, _contact, ingested_by_process

MESSAGES = int(os.environ.get("BENCH_WORKERS_MESSAGES", "1500"))
TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[float, str]]:
    """Every process's CPU seconds so far and its command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        found[int(entry.name)] = ((int(fields[11]) + int(fields[12])) / TICK, command)
    return found


def _machine() -> tuple[float, float]:
    """All CPU seconds of the machine so far, and the idle ones among them."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) / TICK, (values[3] + values[4]) / TICK


def _group(pid: int, command: str, server: set[int], supervisor: int | None) -> str:
    if pid == supervisor:
        return "supervisor"
    if pid in server:
        return f"worker:{pid}"
    if pid == os.getpid():
        return "load client"
    if command.startswith("postgres:"):
        return ("postgres: backends" if "inboxlog_test" in command
                else "postgres: " + command.rsplit(":", 1)[-1].strip())
    if "/bin/postgres" in command:
        return "postgres: postmaster"
    return "other"


class _Sessions:
    """Samples pg_stat_activity for one database in a thread of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.counts: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        import asyncpg

        from core.storage.listen import asyncpg_dsn

        conn = await asyncpg.connect(asyncpg_dsn(self.url))
        try:
            while not self._stop.is_set():
                for row in await conn.fetch(
                        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"):
                    self.counts["/".join(str(v or "-") for v in row.values())] += 1
                self.samples += 1
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    def __enter__(self) -> _Sessions:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_once(workers: int, tmp: Path) -> dict[str, Any]:
    url = new_pg_database()
    data_dir = Path(tempfile.mkdtemp(dir=tmp))
    metrics_dir = data_dir / "metrics"
    args = ("--workers", str(workers)) if workers > 1 else ()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)} if workers > 1 else {}
    try:
        with running(Server(data_dir, db_url=url, extra_args=args, extra_env=env)) as server:
            assert server.process is not None
            rcpt = server.new_portal(USER).bcc_address
            asyncio.run(load(server.smtp_port, USER, rcpt, make_messages(100, USER, _contact)))
            messages = make_messages(MESSAGES, USER, _contact)
            tree = set(process_tree(server.process.pid))
            supervisor = server.process.pid if workers > 1 else None
            counters = ("inboxlog_db_statements", "inboxlog_db_commits")
            before_counts = {name: scrape_counter(server.base_url, name) for name in counters}
            by_worker = ingested_by_process(metrics_dir) if workers > 1 else {}
            spies = [subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid),
                 "--nonblocking", "--idle", "-t", "-r", "100", "-d", os.environ["SPY"],
                 "-f", "raw", "-o", f"spy-{workers}-{pid}.txt"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for pid in sorted(tree - {supervisor}) if os.environ.get("SPY")]
            with _Sessions(url) as sessions:
                before, machine, started = _processes(), _machine(), time.perf_counter()
                result = asyncio.run(load(server.smtp_port, USER, rcpt, messages))
                wall = time.perf_counter() - started
                after, machine_after = _processes(), _machine()
            for spy in spies:
                spy.wait()
            counts = {name: scrape_counter(server.base_url, name) - before_counts[name]
                      for name in counters}
            moved = {pid: n - by_worker.get(pid, 0.0)
                     for pid, n in ingested_by_process(metrics_dir).items()} if workers > 1 else {}
    finally:
        drop_pg_database(url)
    ok = result.ok or 1
    cpu: dict[str, float] = {}
    for pid, (seconds, command) in after.items():
        if pid in before and seconds > before[pid][0]:
            group = _group(pid, command, tree, supervisor)
            cpu[group] = cpu.get(group, 0.0) + seconds - before[pid][0]
    total, idle = machine_after[0] - machine[0], machine_after[1] - machine[1]
    return {
        "workers": workers, "messages": result.ok, "codes": result.codes,
        "messages_per_s": round(result.ok / wall, 1),
        "machine_busy_cores": round((total - idle) / wall, 2),
        "cpu_ms_per_message": {k: round(v * 1000 / ok, 2) for k, v in sorted(cpu.items())},
        "statements_per_message": round(counts["inboxlog_db_statements"] / ok, 2),
        "commits_per_message": round(counts["inboxlog_db_commits"] / ok, 3),
        "messages_by_worker": {str(pid): n for pid, n in moved.items() if n},
        "pg_sessions": {key: round(n / (sessions.samples or 1), 2)
                        for key, n in sessions.counts.most_common(8)},
    }


def main(order: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        for workers in order:
            print(json.dumps(run_once(workers, Path(tmp))), flush=True)


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [1, 2, 1, 2])
