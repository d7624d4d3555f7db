"""Acknowledgement rows this process cannot send (they go through a team mailbox and no
connector runs here) never starve the others: the sweep puts each off a retry period,
so the rows after the first page of fifty are sent, through the real relay, and one a
day old is given up with the reason (core.tickets.acknowledgements.sweep)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from core import accounts
from core.outbound_mail import OutboundMail, SmtpRelay
from core.storage.db import Database, migrate, sqlite_url
from core.storage.models import AcknowledgementOutbox, Inbox, Ticket, utcnow
from core.tickets import acknowledgements, inboxes
from tests.support.smtp_recorder import SmtpRecorder


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(sqlite_url(tmp_path / "inboxlog.db"))
    await migrate(database)
    yield database
    await database.dispose()


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[SmtpRecorder]:
    (tmp_path / "relay").mkdir()
    recorder = SmtpRecorder.relay(tmp_path / "relay")
    yield recorder
    recorder.stop()


def _message(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"] = "support@acme.example", f"c{n}@client.example"
    msg["Subject"], msg["Message-ID"] = f"[Ticket#{n}] received", f"<ack{n}@acme.example>"
    msg.set_content("Thank you.")
    return msg.as_bytes()


async def _rows(db: Database, unsendable: int, created_ago: timedelta = timedelta()
                ) -> list[int]:
    """``unsendable`` rows of a team inbox with a connected mailbox, then one of a team
    inbox without (sent by the relay); their ids in that order."""
    async with db.transaction() as session:
        portal = (await accounts.create_portal(session, "Desk")).portal
        teams = [await inboxes.create_inbox(session, portal.id, inboxes.InboxChange(
            name=name)) for name in ("Mailbox", "Relay")]
        session.add(Inbox(portal_id=portal.id, user_id=None, team_inbox_id=teams[0].id,
                          address="team@acme.example", imap_host="127.0.0.1", imap_port=993,
                          imap_security="tls", smtp_host="127.0.0.1", smtp_port=465,
                          smtp_security="tls", username="team", secret=""))
        tickets = [Ticket(portal_id=portal.id, subject=f"t{n}", status="open",
                          priority="normal", tags=[],
                          team_inbox_id=teams[0 if n < unsendable else 1].id)
                   for n in range(unsendable + 1)]
        session.add_all(tickets)
        await session.flush()
        rows = [AcknowledgementOutbox(
            portal_id=portal.id, ticket_id=t.id, message_id=f"<ack{n}@acme.example>",
            recipient=f"c{n}@client.example", message=_message(n),
            created_at=utcnow() - created_ago) for n, t in enumerate(tickets)]
        session.add_all(rows)
        await session.flush()
        return [r.id for r in rows]


def _senders(relay: SmtpRecorder) -> acknowledgements.Senders:
    url = f"smtp://relay:s3cret@127.0.0.1:{relay.port}"
    return acknowledgements.Senders(OutboundMail(SmtpRelay.parse(url), ""))


async def test_sixty_unsendable_rows_do_not_starve_the_sendable_one(
        db: Database, relay: SmtpRecorder) -> None:
    """The first sweep's page is fifty unsendable rows (put off); the second reaches the
    sendable one and the relay gets it; the others are put off, not given up."""
    *waiting, sendable = await _rows(db, 60)
    senders = _senders(relay)
    assert await acknowledgements.sweep(db, senders) == 0
    assert await acknowledgements.sweep(db, senders) == 1
    [(envelope, _raw)] = relay.messages()
    assert envelope["rcpt_tos"] == ["c60@client.example"]
    async with db.read() as session:
        rows = {r.id: r for r in await session.scalars(select(AcknowledgementOutbox))}
    assert rows[sendable].sent_at is not None
    assert all(rows[i].sent_at is None and rows[i].given_up_at is None
               and rows[i].attempts == 0 and rows[i].next_attempt_at > utcnow()
               and "connector" in rows[i].last_error for i in waiting)
    assert await acknowledgements.sweep(db, senders) == 0  # nothing due any more


async def test_an_unsendable_row_a_day_old_is_given_up(db: Database,
                                                       relay: SmtpRecorder) -> None:
    *old, _sendable = await _rows(db, 1, created_ago=timedelta(days=1, minutes=1))
    assert await acknowledgements.sweep(db, _senders(relay)) == 1
    async with db.read() as session:
        row = await session.get(AcknowledgementOutbox, old[0])
    assert row is not None and row.given_up_at is not None and row.sent_at is None
    assert "connector" in row.last_error


async def test_an_unsendable_row_backs_off(db: Database, relay: SmtpRecorder) -> None:
    """Put off as long as it has waited (one retry period at first, an hour at most):
    a new row is due again in 30 s, one written 10 minutes ago in 10 minutes, one of
    5 hours in an hour (every 30 s for a day before)."""
    first = timedelta(seconds=acknowledgements.retry_base())
    cases = ((timedelta(), first), (timedelta(minutes=10), timedelta(minutes=10)),
             (timedelta(hours=5), timedelta(hours=1)))
    *waiting, _sendable = await _rows(db, len(cases))
    async with db.transaction() as session:
        for row_id, (ago, _delay) in zip(waiting, cases, strict=True):
            row = await session.get(AcknowledgementOutbox, row_id)
            assert row is not None
            row.created_at = utcnow() - ago
    before = utcnow()
    await acknowledgements.sweep(db, _senders(relay))
    after = utcnow()
    async with db.read() as session:
        for row_id, (ago, delay) in zip(waiting, cases, strict=True):
            row = await session.get(AcknowledgementOutbox, row_id)
            assert row is not None and row.given_up_at is None and row.attempts == 0
            assert (before + delay - timedelta(seconds=1) <= row.next_attempt_at
                    <= after + delay + timedelta(seconds=1)), (ago, row.next_attempt_at)

def test_put_off_delay_doubles_up_to_the_maximum() -> None:
    waited, tries = timedelta(), 0
    while waited < acknowledgements.GIVE_UP_AFTER:
        waited += acknowledgements.put_off_delay(waited, base=30)
        tries += 1
    assert tries < 40  # 2880 at one retry period each
    assert acknowledgements.put_off_delay(timedelta(), base=30) == timedelta(seconds=30)
    assert acknowledgements.put_off_delay(timedelta(days=1), base=30) == timedelta(hours=1)
