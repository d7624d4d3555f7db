"""The rows of a newly logged email, written with SQLAlchemy Core statements in one go.

The ORM's unit of work (identity map, attribute events, flush ordering, one round of
bookkeeping per object) was most of the CPU an ingest cost (bench/NOTES.md, issue 17).
A new email's rows are few and known in advance: its thread when it starts one, the
email, its source, contact and company links, the raw header copy, its attachments,
the Message-IDs its thread claims and its events. Here they are plain ``INSERT``s, one
per table (several rows of a table in one ``executemany``), run by the database driver
on the session's connection (``core.storage.statements``), in the caller's transaction.
Nothing commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.storage import statements
from core.storage.models import (
    Attachment,
    Email,
    EmailCompany,
    EmailContact,
    EmailSource,
    Event,
    RawCopy,
    Thread,
    ThreadRef,
)
from core.storage.statements import Insert


@dataclass(frozen=True)
class NewEmail:
    """What ``write`` inserts for one email of ``portal_id``. ``thread_id`` None: a new
    thread named ``subject`` is started. Rows are given without their ``email_id``
    (and the events' and refs' thread), which ``write`` fills in."""

    portal_id: int
    email: dict[str, Any]  # the emails row, without thread_id
    source: str
    thread_id: int | None = None
    subject: str = ""  # the new thread's
    contact_ids: tuple[int, ...] = ()
    company_ids: tuple[int, ...] = ()
    raw_copy: dict[str, object] | None = None
    attachments: tuple[dict[str, Any], ...] = ()
    refs: tuple[str, ...] = ()  # Message-IDs no thread claims yet
    events: tuple[dict[str, Any], ...] = ()


# Compiled once per dialect and set of columns (core.storage.statements); run by the
# database driver itself, without SQLAlchemy's per-execution work.
_NEW_ID = {model: Insert(model.__table__, returning="id") for model in (Thread, Email)}
_INSERT = {model: Insert(model.__table__) for model in (
    EmailSource, EmailContact, EmailCompany, RawCopy, Attachment, ThreadRef, Event)}


async def write(session: AsyncSession, new: NewEmail) -> tuple[int, int]:
    """Insert ``new``'s rows in the session's transaction; its (email id, thread id)."""
    run = await statements.of_session(session)
    thread_id = new.thread_id
    if thread_id is None:
        thread_id = await run.insert_id(_NEW_ID[Thread], {
            "portal_id": new.portal_id, "subject": new.subject})
    email_id = await run.insert_id(_NEW_ID[Email], {**new.email, "thread_id": thread_id})
    rows: list[tuple[Any, list[dict[str, Any]]]] = [
        (EmailSource, [{"email_id": email_id, "source": new.source}]),
        (EmailContact, [{"email_id": email_id, "contact_id": c} for c in new.contact_ids]),
        (EmailCompany, [{"email_id": email_id, "company_id": c} for c in new.company_ids]),
        (RawCopy, [{**new.raw_copy, "email_id": email_id}] if new.raw_copy else []),
        (Attachment, [{**a, "email_id": email_id} for a in new.attachments]),
        (ThreadRef, [{"portal_id": new.portal_id, "message_id": m, "thread_id": thread_id}
                     for m in new.refs]),
        (Event, [{**e, "email_id": email_id} for e in new.events]),
    ]
    for model, values in rows:
        await run.insert(_INSERT[model], values)
    return email_id, thread_id
