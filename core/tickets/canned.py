"""A team inbox's canned responses: saved replies its agents insert, with placeholders
filled in from the ticket (docs/ticket-replies.md).

A placeholder is ``{{object.field}}``, optionally with a fallback for an empty value:
``Hi {{contact.first_name|there}},``. Only the names in ``FIELDS`` exist; a body naming
another is refused when saved, so a typo never reaches a customer. Filling in is one
pass of plain substitution: a value is inserted as text, never read as a template (a
contact named ``{{agent.email}}`` stays that text), and control characters in values
are dropped. Members of the inbox (and the admin) manage them; anyone else gets
NotFound. Never commits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import queries
from core.errors import InvalidInput, NotFound
from core.storage.models import (
    CannedResponse,
    Company,
    Contact,
    TeamInbox,
    Ticket,
    User,
    utcnow,
)
from core.tickets.inboxes import visible_inbox

MAX_BODY = 20_000
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z]+)\.([a-z_]+)\s*(?:\|([^{}|\r\n]{0,100}))?\}\}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
FIELDS = {
    "contact": ("first_name", "last_name", "name", "email"),
    "company": ("name", "domain"),
    "ticket": ("id", "subject"),
    "agent": ("first_name", "name", "email"),
    "inbox": ("name", "address"),
}


@dataclass(frozen=True)
class Context:
    """What placeholders are filled from: a ticket, its customer, the replying agent."""

    ticket: Ticket
    inbox: TeamInbox
    agent: User
    contact: Contact | None
    company: Company | None


def check_body(body: str) -> str:
    """The body if every placeholder in it exists; InvalidInput naming the first that
    does not."""
    if not body.strip():
        raise InvalidInput("body: a canned response has some text")
    if len(body) > MAX_BODY:
        raise InvalidInput(f"body: at most {MAX_BODY} characters")
    for match in _PLACEHOLDER.finditer(body):
        kind, field = match.group(1), match.group(2)
        if field not in FIELDS.get(kind, ()):
            known = ", ".join(f"{{{{{k}.{f}}}}}" for k, fs in FIELDS.items() for f in fs)
            raise InvalidInput(f"body: no placeholder {{{{{kind}.{field}}}}}; there are "
                               f"{known}")
    return body


def _split(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def values(context: Context) -> dict[str, str]:
    """Every placeholder's value for ``context`` ("" when unknown)."""
    contact, company, agent = context.contact, context.company, context.agent
    contact_name = contact.name if contact is not None else ""
    first, last = _split(contact_name)
    found = {
        "contact.first_name": first, "contact.last_name": last,
        "contact.name": contact_name, "contact.email": contact.email if contact else "",
        "company.name": company.name if company is not None else "",
        "company.domain": (company.domain or "") if company is not None else "",
        "ticket.id": str(context.ticket.id), "ticket.subject": context.ticket.subject,
        "agent.first_name": _split(agent.name)[0], "agent.name": agent.name,
        "agent.email": agent.email, "inbox.name": context.inbox.name,
        "inbox.address": context.inbox.address,
    }
    return {key: _CONTROL.sub("", value) for key, value in found.items()}


def render(body: str, context: Context) -> str:
    """``body`` with its placeholders filled in (one pass: values are never expanded)."""
    filled = values(context)

    def one(match: re.Match[str]) -> str:
        value = filled.get(f"{match.group(1)}.{match.group(2)}", "")
        return value or (match.group(3) or "").strip()

    return _PLACEHOLDER.sub(one, body)


async def context_of(session: AsyncSession, ticket: Ticket, agent: User) -> Context:
    assert ticket.team_inbox_id is not None
    inbox = await session.get(TeamInbox, ticket.team_inbox_id)
    assert inbox is not None
    contact = (await session.get(Contact, ticket.contact_id)
               if ticket.contact_id is not None else None)
    company_id = ticket.company_id or (contact.company_id if contact is not None else None)
    company = await session.get(Company, company_id) if company_id is not None else None
    return Context(ticket, inbox, agent, contact, company)


def _name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("name: 1-200 characters")
    return name


async def list_responses(session: AsyncSession, portal_id: int, user_id: int | None,
                         inbox_id: int) -> Sequence[CannedResponse]:
    inbox = await visible_inbox(session, portal_id, user_id, inbox_id)
    return (await session.scalars(select(CannedResponse).where(
        CannedResponse.team_inbox_id == inbox.id).order_by(CannedResponse.name))).all()


async def get_response(session: AsyncSession, portal_id: int, user_id: int | None,
                       inbox_id: int, response_id: int) -> CannedResponse:
    """A canned response of a team inbox the caller is a member of; NotFound else (one
    of another inbox, even of the same portal, is not found under this one)."""
    inbox = await visible_inbox(session, portal_id, user_id, inbox_id)
    found = await queries.owned(session, CannedResponse, portal_id, response_id)
    if found.team_inbox_id != inbox.id:
        raise NotFound(f"no canned response {response_id}")
    return found


async def _unique(session: AsyncSession, response: CannedResponse, *, new: bool) -> None:
    """Write ``response`` in a savepoint; InvalidInput when its name is taken (the
    caller's transaction goes on without it)."""
    try:
        async with session.begin_nested():
            if new:
                session.add(response)
            await session.flush()
    except IntegrityError:  # the savepoint's rollback took a new row out of the session
        raise InvalidInput(f"name: this inbox has a canned response named "
                           f"{response.name!r} already") from None


async def create(session: AsyncSession, portal_id: int, user_id: int | None, inbox_id: int,
                 *, name: str, body: str) -> CannedResponse:
    inbox = await visible_inbox(session, portal_id, user_id, inbox_id)
    response = CannedResponse(portal_id=portal_id, team_inbox_id=inbox.id, name=_name(name),
                              body=check_body(body), created_by=user_id)
    await _unique(session, response, new=True)
    return response


async def update(session: AsyncSession, portal_id: int, user_id: int | None, inbox_id: int,
                 response_id: int, *, name: str | None, body: str | None) -> CannedResponse:
    response = await get_response(session, portal_id, user_id, inbox_id, response_id)
    if name is not None:
        response.name = _name(name)
    if body is not None:
        response.body = check_body(body)
    response.updated_at = utcnow()
    await _unique(session, response, new=False)
    return response


async def delete(session: AsyncSession, portal_id: int, user_id: int | None, inbox_id: int,
                 response_id: int) -> None:
    response = await get_response(session, portal_id, user_id, inbox_id, response_id)
    await session.delete(response)
    await session.flush()
