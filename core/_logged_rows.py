"""The rows of a newly logged email, written with SQLAlchemy Core statements in one go.

The ORM's unit of work (identity map, attribute events, flush ordering, one round of
bookkeeping per object) was most of the CPU an ingest cost (bench/NOTES.md, issue 17).
A new email's rows are few and known in advance: its thread when it starts one, the
email, its source, contact and company links, the raw header copy, its attachments,
the Message-IDs its thread claims and its events. Here they are plain ``INSERT``s, one
per table (several rows of a table in one ``executemany``), run by the session's
connection in one greenlet, in the caller's transaction. Nothing commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.ext.asyncio import AsyncSession

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


# Built once: a statement made anew per row would cost its construction and a cache
# key of its values each time (a tenth of an ingest's CPU, measured).
_INSERT = {model: insert(model) for model in (
    Thread, Email, EmailSource, EmailContact, EmailCompany, RawCopy, Attachment, ThreadRef,
    Event)}


def _new_id(conn: Connection, model: Any, values: dict[str, Any]) -> int:
    key = conn.execute(_INSERT[model], values).inserted_primary_key
    assert key is not None
    return int(key[0])


def _write(conn: Connection, new: NewEmail) -> tuple[int, int]:
    thread_id = new.thread_id
    if thread_id is None:
        thread_id = _new_id(conn, Thread, {"portal_id": new.portal_id,
                                           "subject": new.subject})
    email_id = _new_id(conn, Email, {**new.email, "thread_id": thread_id})
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
        if len(values) == 1:
            conn.execute(_INSERT[model], values[0])
        elif values:
            conn.execute(_INSERT[model], values)
    return email_id, thread_id


async def write(session: AsyncSession, new: NewEmail) -> tuple[int, int]:
    """Insert ``new``'s rows in the session's transaction; its (email id, thread id)."""
    connection = await session.connection()
    return await connection.run_sync(_write, new)
