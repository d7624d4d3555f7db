"""A dead worker of `inboxlog serve --workers 2` takes no share of new connections:
the supervisor closes its sockets at once (they would otherwise hold about half the new
connections, unanswered, until the restart), and binds fresh ones for its successor.
Through the real SMTP port; the first restart pause is made long
(``INBOXLOG_WORKER_RESTART_DELAY``) to watch the port while the worker is down."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import time
from collections.abc import Iterator

import pytest

from tests.multinode.test_workers import children, owner, workers_of
from tests.support import postgres
from tests.support.server import Server

RESTART_DELAY = 8.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with postgres.inboxlog_server(
            tmp_path_factory.mktemp("worker-down"), ("--workers", "2"),
            extra_env={"INBOXLOG_WORKER_RESTART_DELAY": str(RESTART_DELAY)}) as running:
        yield running


def wait_for_log(server: Server, pattern: str, timeout: float = 20) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while not (found := re.search(pattern, server.log())):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.02)
    return found


def test_new_connections_are_answered_while_a_worker_is_down(server: Server) -> None:
    """SIGKILL one worker: 40 new SMTP connections in a row each get the 220 greeting
    within seconds from the live worker (none waits for the restart); the restarted
    worker then takes connections on its fresh sockets."""
    assert server.process is not None
    pids = workers_of(server)
    victim = max(pids)
    os.kill(victim, signal.SIGKILL)
    wait_for_log(server, rf"\(pid {victim}\) ended with signal SIGKILL .* its sockets closed")
    started = time.monotonic()
    for n in range(40):
        with smtplib.SMTP(timeout=4) as smtp:
            code, _ = smtp.connect("127.0.0.1", server.smtp_port)
            assert code == 220, n
            assert smtp.noop()[0] == 250
    elapsed = time.monotonic() - started
    assert len(children(server.process.pid)) == 1, "restarted before the 40 were done"
    assert elapsed < 10, elapsed
    restarted = workers_of(server, timeout=RESTART_DELAY + 20) - pids
    assert len(restarted) == 1, server.log()
    live = (pids - {victim}) | restarted
    for _ in range(200):  # the kernel hashes some new connections to the fresh socket
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=4) as smtp:
            assert smtp.sock is not None
            if owner(server.smtp_port, smtp.sock, live) in restarted:
                assert smtp.noop()[0] == 250
                return
    raise AssertionError(f"the restarted worker took none of 200 connections\n{server.log()}")
