"""A team inbox whose address is a real Dovecot mailbox (and a user of the SMTP test
server), for the tests of a team inbox's connected mailbox (tests/inbox_sync/
test_team_mailbox*.py; the ``team`` fixture of tests/inbox_sync/conftest.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import httpx
from imapclient import IMAPClient

from tests.support.dovecot import Dovecot
from tests.support.server import ClockedServer
from tests.support.smtp_recorder import SmtpRecorder
from tests.support.tickets import Desk, make_desk


class TeamMailbox:
    """A portal's team inbox whose address is a Dovecot user, and that user's login."""

    def __init__(self, dovecot: Dovecot, recorder: SmtpRecorder, server: ClockedServer):
        self.address = f"support-{uuid.uuid4().hex[:10]}@ourco.example"
        self.password = "pw-" + uuid.uuid4().hex[:8]
        dovecot.add_user(self.address, self.password)
        recorder.add_user(self.address, self.password)
        self.dovecot, self.recorder, self.server = dovecot, recorder, server
        self.desk: Desk = make_desk(server, address=self.address)
        self.inbox_id = 0

    def body(self) -> dict[str, Any]:
        return {"address": self.address, "password": self.password,
                "team_inbox_id": self.desk.inbox["id"],
                "imap": {"host": "127.0.0.1", "port": self.dovecot.imap_port,
                         "security": "none"},
                "smtp": {"host": "127.0.0.1", "port": self.recorder.port, "security": "none"}}

    def connect(self) -> dict[str, Any]:
        """The admin connects the mailbox to the team inbox (201 asserted); the inbox."""
        with self.api() as api:
            connected = api.post("/api/v1/inboxes", json=self.body())
        assert connected.status_code == 201, connected.text
        self.inbox_id = connected.json()["id"]
        return dict(connected.json())

    def api(self, who: str | None = None) -> httpx.Client:
        """As the admin (None), agent "0"/"1" or the colleague outside the inbox."""
        token = (self.desk.account.admin_token if who is None
                 else self.desk.outsider["api_token"] if who == "outsider"
                 else self.desk.agents[int(who)]["api_token"])
        return self.server.api(token)

    def imap(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", self.dovecot.imap_port, ssl=False, timeout=10)
        client.login(self.address, self.password)
        return client

    def arrives(self, msg: EmailMessage) -> None:
        """The message lands in the mailbox's INBOX (as delivered)."""
        with self.imap() as client:
            client.append("INBOX", msg.as_bytes(), msg_time=datetime.now(UTC))

    def sync(self, who: str | None = "0") -> dict[str, Any]:
        """Sync now, as a member by default; the report."""
        with self.api(who) as api:
            response = api.post(f"/api/v1/inboxes/{self.inbox_id}/sync")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def synced(self, done: Callable[[], bool], timeout: float = 30) -> None:
        """Sync now until ``done`` (the background worker, on IDLE, may get there first:
        either way the mail went through the sync)."""
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "not synced in time"
            self.sync()

    def first_ticket(self, msg: EmailMessage) -> dict[str, Any]:
        """``msg`` lands in the mailbox and is synced: the one ticket the inbox then has."""
        self.arrives(msg)
        self.synced(lambda: len(self.tickets()) == 1)
        [ticket] = self.tickets()
        return ticket

    def checkpoint(self, role: str) -> int:
        with self.api() as api:
            inbox = api.get(f"/api/v1/inboxes/{self.inbox_id}").json()
        return int(next(f["last_uid"] for f in inbox["folders"] if f["role"] == role))

    def tickets(self) -> list[dict[str, Any]]:
        with self.api() as api:
            found = api.get("/api/v1/tickets",
                            params={"team_inbox_id": self.desk.inbox["id"]}).json()
        return list(found["items"])
