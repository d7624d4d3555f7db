"""``DaemonThreads``: a bounded executor whose running calls never hold up the exit."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import CancelledError

import pytest

from core.storage.worker_threads import DaemonThreads


def test_never_more_threads_than_workers_and_every_call_runs() -> None:
    pool = DaemonThreads(2, "t-bound")
    gate = threading.Event()
    def call(n: int) -> int:
        gate.wait(10)
        return n

    futures = [pool.submit(call, n) for n in range(6)]
    assert sum(t.name.startswith("t-bound-") for t in threading.enumerate()) == 2
    gate.set()
    assert [f.result(timeout=10) for f in futures] == list(range(6))
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 // 0).result(timeout=10)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)


def test_shutdown_can_cancel_what_waits() -> None:
    pool = DaemonThreads(1, "t-cancel")
    gate = threading.Event()
    running = pool.submit(gate.wait, 10)
    waiting = pool.submit(lambda: None)
    pool.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert running.result(timeout=10) is True
    with pytest.raises(CancelledError):
        waiting.result(timeout=10)


def test_the_process_exits_while_a_call_still_runs() -> None:
    script = ("import time\nfrom core.storage.worker_threads import DaemonThreads\n"
              "pool = DaemonThreads(1, 'parse')\npool.submit(time.sleep, 120)\n"
              "time.sleep(0.1)\nprint('done')\n")
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == 0 and result.stdout == b"done\n", result.stderr
    assert time.monotonic() - start < 30  # a ThreadPoolExecutor would wait the 120 s
