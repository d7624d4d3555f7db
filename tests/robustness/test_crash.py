"""A server killed mid-load loses no acknowledged message and stores none twice."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

from bench.load import small_message
from bench.smtpclient import Session
from tests.support.server import PortalAccount, Server

# Eight sessions in flight when the kill comes, hundreds acknowledged before it and
# hundreds resent after the restart: what the test needs; more only costs time.
MESSAGES = 1000
SESSIONS = 8
PER_SESSION = 50
KILL_AFTER = 300  # acknowledged messages before SIGKILL


async def _send_all(server: Server, account: PortalAccount, pending: dict[str, bytes],
                    acked: set[str], *, kill_after: int | None = None) -> None:
    """Send ``pending`` over parallel sessions, adding each 250'd Message-ID to ``acked``;
    with ``kill_after``, SIGKILL the server once that many are acknowledged."""
    queue = list(pending)
    killed = asyncio.Event()

    async def worker() -> None:
        while queue and not killed.is_set():
            try:
                session = await Session.open("127.0.0.1", server.smtp_port, timeout=30)
            except OSError:
                return
            try:
                for _ in range(PER_SESSION):
                    if not queue:
                        break
                    message_id = queue.pop()
                    reply = await session.send(account.user_email, [account.bcc_address],
                                               pending[message_id])
                    if reply.code == 250:
                        acked.add(message_id)
                    if kill_after is not None and len(acked) >= kill_after \
                            and not killed.is_set():
                        killed.set()
                        assert server.process is not None
                        server.process.kill()
                        server.process.wait()
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                return
            finally:
                session.close()

    await asyncio.gather(*(worker() for _ in range(SESSIONS)))


def _stored(db_path: Path, portal_id: int) -> dict[str, int]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT message_id, count(*) FROM emails WHERE portal_id = ? "
                            "GROUP BY message_id", (portal_id,)).fetchall()
    return {f"<{message_id}>": count for message_id, count in rows}


async def test_sigkill_mid_load_keeps_every_acknowledged_message_exactly_once(
        tmp_path: Path) -> None:
    """After SIGKILL and restart, resending the unacknowledged leaves each message stored once."""
    server = Server(tmp_path / "crash").start()
    try:
        account = server.new_portal()
        messages = {}
        for n in range(MESSAGES):
            message_id = f"<{uuid.uuid4().hex}@crash.example>"
            messages[message_id] = small_message(account.user_email, f"c{n % 50}@acme.example",
                                                 n, 1024, message_id=message_id)
        acked: set[str] = set()
        await _send_all(server, account, messages, acked, kill_after=KILL_AFTER)
        assert not server.alive()
        before_restart = set(acked)
        assert KILL_AFTER <= len(before_restart) < MESSAGES

        server.start()  # same data dir, same ports
        unacked = {m: data for m, data in messages.items() if m not in acked}
        for _ in range(3):  # a sender's MTA retries until it gets its 250
            await _send_all(server, account, unacked, acked)
            unacked = {m: data for m, data in unacked.items() if m not in acked}
            if not unacked:
                break
        assert not unacked, f"{len(unacked)} messages never acknowledged"

        stored = _stored(server.data_dir / "inboxlog.db", account.portal_id)
        assert {m for m in before_restart if stored.get(m) != 1} == set()
        assert set(stored) == set(messages)
        assert set(stored.values()) == {1}
        assert server.alive()
    finally:
        server.stop()
