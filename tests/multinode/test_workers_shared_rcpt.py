"""The failed-recipient limit per client address (50 per 15 minutes) is shared by the
processes of `inboxlog serve --workers 2` on PostgreSQL: guesses spread over both
workers still get 49 refusals, then 421 (each worker alone would allow 49). Real SMTP
port; which worker holds each connection is read from /proc."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest

from smtp_ingest.handler import MAX_FAILED_RCPTS_PER_IP, MAX_FAILED_RCPTS_PER_SESSION
from tests.multinode.test_workers import owner, workers_of
from tests.support import postgres
from tests.support.server import Server

GUESSER = "127.0.0.9"  # a client address of its own


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with postgres.inboxlog_server(tmp_path_factory.mktemp("workers-rcpt"),
                                  ("--workers", "2")) as running:
        yield running


def _session_on(server: Server, pid: int, pids: set[int]) -> smtplib.SMTP:
    """An SMTP session from GUESSER on a connection worker ``pid`` accepted."""
    for _ in range(200):
        smtp = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30,
                            source_address=(GUESSER, 0))
        assert smtp.sock is not None
        if owner(server.smtp_port, smtp.sock, pids) == pid:
            smtp.ehlo("guesser.test")
            assert smtp.mail("rep@ourco.example")[0] == 250
            return smtp
        smtp.close()
    raise AssertionError(f"worker {pid} accepted none of 200 connections")


def test_the_failed_rcpt_budget_of_an_address_is_shared_by_the_workers(
        server: Server) -> None:
    """27 unknown recipients through one worker, then the rest through the other: the
    50th failure overall answers 421 there, and the first worker, asked again, too."""
    pids = workers_of(server)
    first, second = sorted(pids)
    refused, last, guess = 0, 0, 0
    per_session = MAX_FAILED_RCPTS_PER_SESSION - 1  # each session stays under its own
    for pid, budget in ((first, 27), (second, MAX_FAILED_RCPTS_PER_IP)):
        spent = 0
        while last != 421 and spent < budget:
            smtp = _session_on(server, pid, pids)
            for _ in range(min(per_session, budget - spent)):
                last = smtp.rcpt(f"guess{guess}@bcc.test")[0]
                guess += 1
                if last != 550:
                    break
                refused, spent = refused + 1, spent + 1
            smtp.close()
    assert last == 421, server.log()
    assert refused == MAX_FAILED_RCPTS_PER_IP - 1
    smtp = _session_on(server, first, pids)
    assert smtp.rcpt("one-more@bcc.test")[0] == 421
    smtp.close()
