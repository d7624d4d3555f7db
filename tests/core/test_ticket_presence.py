"""Collision detection on both backends (core.tickets.presence), and canned responses'
placeholders as pure functions (core.tickets.canned)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import accounts
from core.errors import InvalidInput, NotFound
from core.storage.db import Database
from core.storage.models import Contact, TeamInbox, Ticket, User, utcnow
from core.tickets import activity, canned, presence
from core.tickets.activity import Kind
from core.tickets.presence import PRESENCE_FOR, ReplyCollision, State


async def _ticket(db: Database) -> tuple[int, int, int]:
    async with db.transaction() as session:
        portal = (await accounts.create_portal(session, "Desk")).portal
        one = (await accounts.add_user(session, portal.id, "one@ourco.example")).user
        two = (await accounts.add_user(session, portal.id, "two@ourco.example")).user
        inbox = TeamInbox(portal_id=portal.id, name="Support", token="t" * 20)
        session.add(inbox)
        await session.flush()
        ticket = Ticket(portal_id=portal.id, subject="Help", team_inbox_id=inbox.id, tags=[])
        session.add(ticket)
        await session.flush()
        activity.log(session, ticket, Kind.CREATED)
        return ticket.id, one.id, two.id


async def test_presence_lapses_and_a_reply_since_loading_collides(database: Database) -> None:
    """Two agents see each other until a presence lapses unrenewed; another agent's
    reply after the version one loaded is a collision unless forced; a presence
    started anew (after it lapsed) loads the ticket as it is then."""
    ticket_id, one, two = await _ticket(database)
    start = utcnow()
    async with database.transaction() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        loaded = (await presence.register(session, ticket, one, State.VIEWING)).seen_activity_id
        await presence.register(session, ticket, two, State.REPLYING, now=start)
    async with database.read() as session:
        seen = await presence.others(session, ticket_id, one, now=start + timedelta(seconds=10))
        assert [(p.user_id, p.state) for p in seen] == [(two, State.REPLYING)]
        assert await presence.others(session, ticket_id, one,
                                     now=start + PRESENCE_FOR + timedelta(seconds=1)) == []
    async with database.transaction() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        activity.log(session, ticket, Kind.AGENT_REPLY, actor=two)
        replied = presence.logged(session)
    async with database.transaction() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        with pytest.raises(ReplyCollision) as raised:
            await presence.check_collision(session, ticket, one, seen_activity_id=None,
                                           force=False)
        assert [c.activity_id for c in raised.value.crossed] == [replied.id]
        assert [c.user_id for c in raised.value.crossed] == [two]
        with pytest.raises(ReplyCollision):
            await presence.check_collision(session, ticket, one, seen_activity_id=loaded,
                                           force=False)
        await presence.check_collision(session, ticket, one, seen_activity_id=None,
                                       force=True)
        # Agent two's own reply is no collision for them.
        await presence.check_collision(session, ticket, two, seen_activity_id=loaded,
                                       force=False)
        later = utcnow() + PRESENCE_FOR + timedelta(seconds=1)
        again = await presence.register(session, ticket, one, State.VIEWING, now=later)
        assert again.seen_activity_id == replied.id


def _context(contact_name: str) -> canned.Context:
    inbox = TeamInbox(name="Support", address="support@acme.example", token="x")
    ticket = Ticket(id=7, subject="Printer", portal_id=1)
    agent = User(name="Ann Agent", email="ann@acme.example", portal_id=1)
    return canned.Context(ticket, inbox, agent,
                          Contact(name=contact_name, email="c@customer.example"), None)


def test_placeholders_are_checked_and_filled_in_one_pass() -> None:
    """An unknown placeholder is refused when saved; values are text (never expanded),
    control characters dropped; a fallback fills an empty value; spaces are allowed."""
    with pytest.raises(InvalidInput, match=r"contact\.frist_name"):
        canned.check_body("Hi {{contact.frist_name}}")
    with pytest.raises(InvalidInput, match="no placeholder"):
        canned.check_body("Hi {{ secrets.key }}")
    body = canned.check_body("Hi {{ contact.first_name }}{{contact.last_name|!}} "
                             "#{{ticket.id}} {{company.name|}}- {{agent.first_name}}")
    assert canned.render(body, _context("Carol")) == "Hi Carol! #7 - Ann"
    hostile = _context("{{agent.email}}\x00\x1b[2J Smith")
    assert canned.render(body, hostile) == "Hi {{agent.email}}[2JSmith #7 - Ann"
    assert canned.render("{{contact.name}}", hostile) == "{{agent.email}}[2J Smith"


async def test_canned_response_names_are_unique_per_inbox(database: Database) -> None:
    """A second canned response of one name in an inbox is a 422-worthy InvalidInput
    (the transaction goes on); the same name in another inbox is fine; a member of
    neither inbox finds neither."""
    ticket_id, one, _ = await _ticket(database)
    async with database.transaction() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.team_inbox_id is not None
        portal_id, inbox_id = ticket.portal_id, ticket.team_inbox_id
        other = TeamInbox(portal_id=portal_id, name="Billing", token="b" * 20)
        session.add(other)
        await session.flush()
        await canned.create(session, portal_id, None, inbox_id, name="Hi", body="Hello")
        with pytest.raises(InvalidInput, match="named 'Hi' already"):
            await canned.create(session, portal_id, None, inbox_id, name="Hi", body="Again")
        await canned.create(session, portal_id, None, other.id, name="Hi", body="Billing")
    async with database.read() as session:
        assert [r.body for r in await canned.list_responses(
            session, portal_id, None, inbox_id)] == ["Hello"]
        with pytest.raises(NotFound):
            await canned.list_responses(session, portal_id, one, inbox_id)
