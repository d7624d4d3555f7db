"""`inboxlog serve --workers 2` on PostgreSQL: two processes on the same SMTP and HTTP
ports under a supervisor, driven through the ports and observed in /proc."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import smtplib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from imapclient import IMAPClient

from core.storage.listen import asyncpg_dsn
from tests.support import postgres
from tests.support.dovecot import Dovecot
from tests.support.mail import deliver, logged_id, message
from tests.support.server import Server, free_port
from tests.support.smtp_recorder import SmtpRecorder

LEASE_SECONDS = 2.0


def children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, waiting for a parent to reap it, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def workers_of(server: Server, count: int = 2, timeout: float = 20) -> set[int]:
    """The server's worker processes, once there are ``count`` of them."""
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while len(found := children(server.process.pid)) != count:
        assert time.monotonic() < deadline, f"workers: {found}\n{server.log()}"
        time.sleep(0.05)
    return found


def owner(server_port: int, client: socket.socket, pids: set[int]) -> int:
    """Which of ``pids`` holds the server's end of the connection ``client``."""
    client_port = client.getsockname()[1]
    inode = ""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":")[1], fields[2].split(":")[1]
        if int(local, 16) == server_port and int(remote, 16) == client_port:
            inode = fields[9]
    assert inode, "no server end of the connection"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no worker holds socket {inode}")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres.database_for("postgres") as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("workers"), pg_url,
                     ("--workers", "2", "--purge-interval", "1"),
                     extra_env={"INBOXLOG_LEASE_SECONDS": str(LEASE_SECONDS)}).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    running = Dovecot([], []).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpRecorder]:
    running = SmtpRecorder(tmp_path_factory.mktemp("smtp"), free_port()).start()
    yield running
    running.stop()


def worker_pid(server: Server, index: int) -> int:
    """The pid of worker ``index`` now (the supervisor logs each start)."""
    started = re.findall(rf"worker {index} started \(pid (\d+)\)", server.log())
    assert started, server.log()
    return int(started[-1])


def lease_holder(db_url: str, name: str) -> str | None:
    async def read() -> str | None:
        conn = await asyncpg.connect(asyncpg_dsn(db_url))
        try:
            value = await conn.fetchval("SELECT holder FROM node_leases WHERE name = $1 "
                                        "AND expires_at > extract(epoch from now())", name)
            return None if value is None else str(value)
        finally:
            await conn.close()
    return asyncio.run(read())


def test_both_workers_take_connections_and_log_mail(server: Server) -> None:
    """Connections to the one SMTP port are served by both workers, and each logs the
    mail it is given into the same database."""
    account = server.new_portal()
    pids = workers_of(server)
    sessions: dict[int, smtplib.SMTP] = {}
    held = []
    for _ in range(40):  # the kernel picks the worker: hold connections until both did
        smtp = server.smtp()
        held.append(smtp)
        assert smtp.sock is not None
        sessions.setdefault(owner(server.smtp_port, smtp.sock, pids), smtp)
        if len(sessions) == 2:
            break
    assert set(sessions) == pids
    ids = []
    for n, smtp in enumerate(sessions.values()):
        smtp.ehlo("client.test")
        ids.append(logged_id(deliver(server, message(
            sender=account.user_email, to="ann@acme.example", subject=f"From worker {n}"),
            account.bcc_address, smtp=smtp)))
    for smtp in held:
        smtp.quit()
    with server.api(account.user_token) as api:
        subjects = {api.get(f"/api/v1/emails/{i}").json()["subject"] for i in ids}
    assert subjects == {"From worker 0", "From worker 1"}


def test_an_inbox_connected_through_either_worker_is_synced_by_worker_0_alone(
        server: Server, pg_url: str, dovecot: Dovecot, recorder: SmtpRecorder) -> None:
    """An inbox connected through the port (either worker answers) is synced by worker 0,
    which takes its lease: one IMAP session, held over several lease periods, and a reply
    arriving in INBOX is logged by sync."""
    address = f"rep-{uuid.uuid4().hex[:10]}@ourco.example"
    password = "pw-" + uuid.uuid4().hex[:8]
    dovecot.add_user(address, password)
    recorder.add_user(address, password)
    account = server.new_portal(address)
    first = f"<{uuid.uuid4().hex}@mail.test>"
    logged_id(deliver(server, message(sender=address, to="ann@acme.example",
                                      message_id=first, subject="Proposal"),
                      account.bcc_address, mail_from=address))
    with server.api(account.user_token) as api:
        response = api.post("/api/v1/inboxes", json={
            "address": address, "password": password,
            "imap": {"host": "127.0.0.1", "port": dovecot.imap_port, "security": "none"},
            "smtp": {"host": "127.0.0.1", "port": recorder.port, "security": "none"}})
    assert response.status_code == 201, response.text
    name = f"inbox:{response.json()['id']}"
    deadline = time.monotonic() + 20
    while dovecot.sessions(address) != 1 or not lease_holder(pg_url, name):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    assert f"-{worker_pid(server, 0)}-" in str(lease_holder(pg_url, name))
    seen = set()
    deadline = time.monotonic() + 3 * LEASE_SECONDS
    while time.monotonic() < deadline:
        seen.add(dovecot.sessions(address))
        time.sleep(0.1)
    assert seen == {1}
    reply = f"<{uuid.uuid4().hex}@mail.test>"
    with IMAPClient("127.0.0.1", dovecot.imap_port, ssl=False, timeout=10) as client:
        client.login(address, password)
        client.append("INBOX", message(sender="Ann <ann@acme.example>", to=address,
                                       subject="Re: Proposal", message_id=reply,
                                       in_reply_to=first).as_bytes())
    deadline = time.monotonic() + 20
    with server.api(account.user_token) as api:
        while not (items := api.get("/api/v1/emails", params={"message_id": reply}
                                    ).json()["items"]):
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
    assert items[0]["sources"] == ["sync"]


def test_the_periodic_purge_runs_in_worker_0_only(server: Server) -> None:
    """With --purge-interval 1, worker 0 purges every second and worker 1 never does."""
    deadline = time.monotonic() + 20
    while server.log().count("worker-0 inboxlog retention purge:") < 2:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    assert "worker-1 inboxlog retention purge" not in server.log()


def test_a_killed_worker_is_replaced_and_the_ports_stay_open(server: Server) -> None:
    """SIGKILL one worker: the supervisor starts another under the same number, and the
    SMTP and HTTP ports answer all along (the other worker, then both)."""
    before = workers_of(server)
    victim = max(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while (now := children(server.process.pid if server.process else 0)) == before or (
            len(now) != 2):
        assert time.monotonic() < deadline, server.log()
        httpx.get(f"{server.base_url}/healthz", timeout=10).raise_for_status()
        with server.smtp() as smtp:
            assert smtp.noop()[0] == 250
        time.sleep(0.05)
    assert victim not in now
    assert f"(pid {victim}) ended with signal SIGKILL" in server.log()
    httpx.get(f"{server.base_url}/healthz", timeout=10).raise_for_status()


def test_sigterm_stops_every_worker_and_then_the_supervisor(
        tmp_path: Path, pg_url: str) -> None:
    """SIGTERM to the supervisor: both workers shut down cleanly, then it exits 0."""
    running = Server(tmp_path, pg_url, ("--workers", "2")).start()
    assert running.process is not None
    pids = workers_of(running)
    deadline = time.monotonic() + 20
    while running.log().count("Application startup complete") < 2:  # both serving
        assert time.monotonic() < deadline, running.log()
        time.sleep(0.05)
    running.process.terminate()
    assert running.process.wait(20) == 0, running.log()
    assert not any(alive(pid) for pid in pids)
    assert running.log().count("Application shutdown complete") == 2


def test_workers_do_not_outlive_a_killed_supervisor(tmp_path: Path, pg_url: str) -> None:
    """SIGKILL to the supervisor (no chance to forward anything): the workers see its
    pipe close and stop, and the ports close with them."""
    running = Server(tmp_path, pg_url, ("--workers", "2")).start()
    assert running.process is not None
    pids = workers_of(running)
    running.process.kill()
    running.process.wait(10)
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, running.log()
        time.sleep(0.05)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", running.http_port), timeout=2).close()
    assert running.log().count("the supervisor is gone: stopping") == 2
