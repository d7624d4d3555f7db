"""What the processes of `inboxlog serve --workers 2` share on PostgreSQL: the counters
that /metrics answers with, whichever worker answers, and the API's rate limits, whichever
worker a request reaches. Driven through the real ports; which worker holds each
connection is read from /proc."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.multinode.test_workers import owner, workers_of
from tests.support import postgres
from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with postgres.inboxlog_server(tmp_path_factory.mktemp("workers-shared"), (
            "--workers", "2", "--api-rate-limit", "6 per 10 minutes")) as running:
        yield running


def connection_to(server: Server, port: int, pid: int, pids: set[int]) -> socket.socket:
    """A connection to ``port`` that worker ``pid`` has accepted (the kernel hands each
    to whichever worker accepts first: connect until ``pid`` takes one)."""
    others = []
    try:
        for _ in range(200):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            deadline = time.monotonic() + 10
            while True:  # accepted once a worker holds the server's end
                try:
                    holder = owner(port, sock, pids)
                    break
                except AssertionError:
                    assert time.monotonic() < deadline, server.log()
                    time.sleep(0.01)
            if holder == pid:
                return sock
            others.append(sock)
        raise AssertionError(f"worker {pid} accepted none of 200 connections")
    finally:
        for sock in others:
            sock.close()


def http_via(server: Server, pid: int, pids: set[int], path: str,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """GET ``path`` over a connection worker ``pid`` serves: status, headers, body."""
    with connection_to(server, server.http_port, pid, pids) as sock:
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
                 *(f"{name}: {value}" for name, value in (headers or {}).items())]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status, *fields = head.decode("latin-1").split("\r\n")
    found = {}
    for field in fields:
        name, _, value = field.partition(":")
        found[name.strip().lower()] = value.strip()
    assert "chunked" not in found.get("transfer-encoding", ""), found
    return int(status.split()[1]), found, body.decode()


def counters(text: str) -> dict[str, float]:
    """Each counter's total over its labels, by sample name."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def test_metrics_count_every_workers_mail_whichever_worker_answers(server: Server) -> None:
    """Mail over SMTP to each worker (3 messages to one, 2 to the other): /metrics,
    asked of either worker, counts all five, and the statements and commits of both."""
    pids = workers_of(server)
    first, second = sorted(pids)
    account = server.new_portal()
    before = counters(http_via(server, first, pids, "/metrics")[2])
    for pid, count in ((first, 3), (second, 2)):
        sent = 0
        while sent < count:  # a session on a connection that worker took
            smtp = server.smtp()
            assert smtp.sock is not None
            if owner(server.smtp_port, smtp.sock, pids) == pid:
                smtp.ehlo("client.test")
                logged_id(deliver(server, message(
                    sender=account.user_email, to="ann@acme.example",
                    subject=f"To {pid}, {sent}"), account.bcc_address, smtp=smtp))
                sent += 1
            smtp.quit()
    seen = [counters(http_via(server, pid, pids, "/metrics")[2]) for pid in (first, second)]
    for each in seen:
        assert each.get("inboxlog_ingested_messages_total", 0) - before.get(
            "inboxlog_ingested_messages_total", 0) == 5
        assert each.get("inboxlog_smtp_data_replies_total", 0) - before.get(
            "inboxlog_smtp_data_replies_total", 0) == 5
        assert each["inboxlog_db_statements_total"] > before["inboxlog_db_statements_total"]
        assert each["inboxlog_db_commits_total"] >= before["inboxlog_db_commits_total"] + 1


def me_via(server: Server, pid: int, pids: set[int], token: str) -> tuple[int, str, str]:
    """GET /api/v1/me with ``token`` through worker ``pid``: status, Retry-After, body."""
    status, headers, body = http_via(server, pid, pids, "/api/v1/me",
                                     {"Authorization": f"Bearer {token}"})
    return status, headers.get("retry-after", ""), body


def test_a_callers_api_budget_is_shared_by_the_workers(server: Server) -> None:
    """6 requests per 10 minutes, taken 3 through each worker: the 7th is 429 through
    either (each worker alone would allow 6); the same portal's admin token and another
    portal's user are other callers, with budgets of their own."""
    pids = workers_of(server)
    first, second = sorted(pids)
    account = server.new_portal("budget@ourco.example")
    other: PortalAccount = server.new_portal("budget@otherco.example")
    taken = [me_via(server, pid, pids, account.user_token)[0] for pid in (first, second) * 3]
    assert taken == [200] * 6
    for pid in (first, second):
        status, retry_after, body = me_via(server, pid, pids, account.user_token)
        assert status == 429 and '"rate_limited"' in body, body
        assert 1 <= int(retry_after) <= 100  # one request more each 10 min / 6
    for pid in (first, second):
        assert me_via(server, pid, pids, account.admin_token)[0] == 200
        assert me_via(server, pid, pids, other.user_token)[0] == 200


def test_a_burst_of_connections_is_shared_by_the_workers(server: Server) -> None:
    """20 SMTP connections that arrive while both workers are busy (stopped here) are
    served by both once they resume: each worker has its own socket on the port
    (SO_REUSEPORT), which the kernel fills by a hash of the connection's addresses. With
    one socket for all, the first worker to run took whatever was waiting."""
    pids = workers_of(server)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        burst = [socket.create_connection(("127.0.0.1", server.smtp_port), timeout=10)
                 for _ in range(20)]
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    try:
        served: dict[int, int] = {}
        for sock in burst:
            assert sock.recv(1024).startswith(b"220"), server.log()  # accepted: greeted
            holder = owner(server.smtp_port, sock, pids)
            served[holder] = served.get(holder, 0) + 1
    finally:
        for sock in burst:
            sock.close()
    # Binomial(20, 1/2): a worker with fewer than 3 is 1 run in 2,500.
    assert len(served) == 2 and min(served.values()) >= 3, served


def test_workers_start_with_the_operators_multiprocess_directory(tmp_path: Path) -> None:
    """PROMETHEUS_MULTIPROC_DIR set by the operator to a directory serve makes itself
    (as `make bench` does): the workers start, and /metrics counts their mail. A metric
    that made its value at import (no labels, or a child kept from import) opened its
    file there before the directory existed, and every worker died at start."""
    metrics = tmp_path / "data" / "metrics"
    with postgres.inboxlog_server(tmp_path / "data", ("--workers", "2"), extra_env={
            "PROMETHEUS_MULTIPROC_DIR": str(metrics)}) as running:
        account = running.new_portal()
        logged_id(deliver(running, message(sender=account.user_email, to="ann@acme.example"),
                          account.bcc_address))
        with running.api(account.user_token) as api:
            text = api.get("/metrics").text
    assert counters(text).get("inboxlog_ingested_messages_total", 0) >= 1
