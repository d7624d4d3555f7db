"""A team inbox to test against: a portal, two agents in the inbox, a colleague outside
it, and mail as customers' clients write it (docs/tickets.md)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest

from tests.support import postgres
from tests.support.mail import deliver, message
from tests.support.server import PortalAccount, Server

SUPPORT = "support@acme.example"


@dataclass
class Desk:
    """A portal with a team inbox and two agents (and a colleague outside the inbox)."""

    server: Server
    account: PortalAccount
    inbox: dict[str, Any]
    agents: list[dict[str, Any]]
    outsider: dict[str, Any]

    @property
    def address(self) -> str:
        return str(self.inbox["forwarding_address"])

    def api(self, token: str | None = None) -> Any:
        return self.server.api(token or self.account.admin_token)

    def ticket(self, ticket_id: int, token: str | None = None) -> dict[str, Any]:
        with self.api(token) as api:
            response = api.get(f"/api/v1/tickets/{ticket_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def ticket_of_email(self, email_id: int) -> dict[str, Any]:
        with self.api() as api:
            items = api.get("/api/v1/tickets", params={"limit": 200}).json()["items"]
        for item in items:
            full = self.ticket(item["id"])
            if email_id in [e["id"] for e in full["emails"]]:
                return full
        raise AssertionError(f"email {email_id} is on no ticket")

    def send(self, msg: EmailMessage) -> tuple[int, str]:
        return deliver(self.server, msg, self.address, mail_from=str(msg["From"]))


def make_desk(server: Server, *, ack: bool = False, **settings: Any) -> Desk:
    account = server.new_portal()
    with server.api(account.admin_token) as admin:
        agents = [admin.post("/api/v1/users", json={"email": f"agent{n}@ourco.example",
                                                     "name": f"Agent {n}"}).json()
                  for n in (1, 2)]
        outsider = admin.post("/api/v1/users", json={"email": "sales@ourco.example"}).json()
        response = admin.post("/api/v1/team-inboxes", json={
            "name": "Support", "address": SUPPORT, "auto_acknowledge": ack,
            "members": [{"user_id": a["id"]} for a in agents], **settings})
        assert response.status_code == 201, response.text
    return Desk(server, account, response.json(), agents, outsider)


def customer_mail(sender: str, subject: str = "Printer on fire", **extra: Any) -> EmailMessage:
    return message(sender=sender, to=SUPPORT, subject=subject, message_id=make_msgid(),
                   body="Hello,\n\nour printer is on fire again. Please help.\n\nCarla",
                   **extra)


def reply_to(original: EmailMessage, sender: str, *, references: bool = True,
             subject: str | None = None) -> EmailMessage:
    reply = message(sender=sender, to=SUPPORT,
                    subject=subject or f"Re: {original['Subject']}", message_id=make_msgid(),
                    body="Still burning.\n\n> our printer is on fire again.")
    reply["In-Reply-To"] = original["Message-ID"]
    if references:
        reply["References"] = original["Message-ID"]
    return reply


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def desk_server(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The suite's shared SQLite server (tests isolate by portal), or one on PostgreSQL
    started for each test module that uses it (a fixture of the whole suite:
    tests/conftest.py names this module in ``pytest_plugins``)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("server")
        return
    with postgres.database_for(request.param) as url:
        running = Server(tmp_path_factory.mktemp(f"desk-{request.param}"),
                         db_url=url).start()
        yield running
        running.stop()


@pytest.fixture
def desk(desk_server: Server) -> Desk:
    """A portal with a team inbox and its agents on ``desk_server``."""
    return make_desk(desk_server)
