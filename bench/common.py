"""What every benchmark shares: result rows, servers under test, process memory."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.server import BCC_DOMAIN, PortalAccount, Server, free_port

__all__ = ["BCC_DOMAIN", "PortalAccount", "Row", "Server", "bare_smtpd", "percentile",
           "rss_kib", "wait_for_port"]


@dataclass(frozen=True)
class Row:
    """One figure: ``value`` measured against ``baseline`` from the same run.

    ``ratio`` is value / baseline; ``goal`` says what the ratio (or value) must meet,
    ``met`` whether it did (None when the figure has no goal).
    """

    benchmark: str
    metric: str
    value: float
    baseline: float
    unit: str
    baseline_name: str
    goal: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB, from /proc."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(rest.split()[0])
    return found


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


@contextmanager
def bare_smtpd() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """The baseline server in a subprocess: aiosmtpd that accepts and discards."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench._bare_smtpd", str(port)],
                               stdout=subprocess.DEVNULL, cwd=Path(__file__).parents[1])
    try:
        wait_for_port(port)
        yield port, process
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start(timeout=120)
    try:
        yield server
    finally:
        server.stop()


def new_pg_database() -> str:
    from tests.support import postgres

    return asyncio.run(postgres.create_database())


def drop_pg_database(url: str) -> None:
    from tests.support import postgres

    asyncio.run(postgres.drop_database(url))


def pg_available() -> bool:
    return bool(os.environ.get("INBOXLOG_TEST_PG_URL"))


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()  # fields from the 3rd (state) on


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (``serve --workers N`` forks its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(
                    int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its live descendants, all their threads,
    from ``/proc/<pid>/stat`` (utime + stime, in clock ticks)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for each in process_tree(pid):
        try:
            fields = _stat_fields(each)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


class FsyncCounter:
    """fsync + fdatasync calls of a process tree (all threads) while it runs, counted by
    the kernel's syscall tracepoints through ``perf stat`` (no ptrace stops: the server
    runs at full speed). ``count`` is None where perf cannot attach."""

    def __init__(self, pids: list[int]) -> None:
        self.count: int | None = None
        self._process: subprocess.Popen[str] | None = None
        self._pids = pids

    def __enter__(self) -> FsyncCounter:
        try:
            self._process = subprocess.Popen(
                ["perf", "stat", "-x", ",", "-e",
                 "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync",
                 "-p", ",".join(map(str, self._pids))],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(0.3)  # perf attaches
        except OSError:
            self._process = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is None:
            return
        self._process.send_signal(2)  # SIGINT: perf prints its counts and exits
        _, err = self._process.communicate(timeout=30)
        counts = [line.split(",")[0] for line in err.splitlines() if "sys_enter_f" in line]
        if counts and all(c.isdigit() for c in counts):
            self.count = sum(int(c) for c in counts)


def scrape_counter(base_url: str, name: str) -> float:
    """The sum of a Prometheus counter's samples on a server's ``/metrics``."""
    import httpx

    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "_total"))
