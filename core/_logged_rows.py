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

from sqlalchemy import bindparam, func, insert, select, union_all
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
    utcnow,
)
from core.storage.statements import Insert, Statement


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


def _filled(table: Any, row: dict[str, Any], given: tuple[str, ...]) -> dict[str, Any]:
    """``row`` with the Python-side defaults of ``table``'s columns not in ``given``."""
    out = dict(row)
    for column in table.c:
        default = column.default
        if column.key in given or column.key in out or default is None:
            continue
        if default.is_callable:
            out[column.key] = default.arg(None)
        elif default.is_scalar:
            out[column.key] = default.arg
    return out


def _defaulted(table: Any, given: tuple[str, ...]) -> list[str]:
    """The columns of ``table`` beyond ``given`` that have a Python-side default."""
    return [c.key for c in table.c if c.key not in given and c.default is not None
            and (c.default.is_callable or c.default.is_scalar)]


def _one_statement(email_keys: tuple[str, ...]) -> Statement:
    """On PostgreSQL, a new email's rows in one statement (one round trip): INSERTs in
    a WITH, each reading the new thread's and email's ids from the one before; the
    rows of the link tables, refs and events from arrays (``unnest``). Attachments are
    inserted after it (most mail has none)."""

    def build() -> Any:
        from sqlalchemy.dialects.postgresql import ARRAY

        threads: Any = Thread.__table__
        emails: Any = Email.__table__
        sources: Any = EmailSource.__table__
        raws: Any = RawCopy.__table__
        contacts: Any = EmailContact.__table__
        companies: Any = EmailCompany.__table__
        refs: Any = ThreadRef.__table__
        events: Any = Event.__table__

        def value(table: Any, column: str, name: str | None = None) -> Any:
            return bindparam(name or f"{table.name}_{column}", type_=table.c[column].type)

        def values(table: Any, column: str) -> Any:
            return func.unnest(bindparam(f"{table.name}_{column}",
                                         type_=ARRAY(table.c[column].type)))

        existing = bindparam("thread_id", type_=threads.c.id.type)
        thread_columns = ["portal_id", "subject", "created_at"]
        new_thread = insert(threads).from_select(
            thread_columns,
            select(*(value(threads, c) for c in thread_columns)).where(existing.is_(None)),
            include_defaults=False,
        ).returning(threads.c.id).cte("new_thread")
        thread = union_all(
            select(new_thread.c.id),
            select(existing.label("id")).where(existing.is_not(None)),
        ).cte("thread")
        email_columns = [*email_keys, *_defaulted(emails, (*email_keys, "thread_id"))]
        email = insert(emails).from_select(
            [*email_columns, "thread_id"],
            select(*(value(emails, c) for c in email_columns), thread.c.id),
            include_defaults=False,
        ).returning(emails.c.id, emails.c.thread_id).cte("email")
        raw_columns = ["rule", "content", "blob_sha256", "created_at"]
        rest = [
            insert(sources).from_select(
                ["email_id", "source", "created_at"],
                select(email.c.id, value(sources, "source"), value(sources, "created_at")),
                include_defaults=False),
            insert(contacts).from_select(
                ["email_id", "contact_id"], select(email.c.id, values(contacts, "contact_id")),
                include_defaults=False),
            insert(companies).from_select(
                ["email_id", "company_id"],
                select(email.c.id, values(companies, "company_id")), include_defaults=False),
            insert(raws).from_select(
                ["email_id", *raw_columns],
                select(email.c.id, *(value(raws, c) for c in raw_columns)).where(
                    value(raws, "rule").is_not(None)),
                include_defaults=False),
            insert(refs).from_select(
                ["portal_id", "message_id", "thread_id"],
                select(value(refs, "portal_id"), values(refs, "message_id"), email.c.thread_id),
                include_defaults=False),
            insert(events).from_select(
                ["email_id", "portal_id", "user_id", "type", "at", "machine", "detail"],
                select(email.c.id, *(values(events, c) for c in (
                    "portal_id", "user_id", "type", "at", "machine", "detail"))),
                include_defaults=False),
        ]
        return select(email.c.id, email.c.thread_id).add_cte(
            *(statement.cte(f"rows_{n}") for n, statement in enumerate(rest)))

    return Statement(build)


_ONE_STATEMENT: dict[tuple[str, ...], Statement] = {}


async def _write_in_one(run: statements.Runner, new: NewEmail) -> tuple[int, int]:
    email_keys = tuple(new.email)
    statement = _ONE_STATEMENT.get(email_keys)
    if statement is None:
        statement = _ONE_STATEMENT[email_keys] = _one_statement(email_keys)
    now = utcnow()
    email = _filled(Email.__table__, new.email, ("thread_id",))
    raw = _filled(RawCopy.__table__, dict(new.raw_copy or {}), ())
    events = [_filled(Event.__table__, e, ("email_id",)) for e in new.events]
    found = await run.first(
        statement, thread_id=new.thread_id, threads_portal_id=new.portal_id,
        threads_subject=new.subject, threads_created_at=now,
        **{f"emails_{k}": v for k, v in email.items()},
        email_sources_source=new.source, email_sources_created_at=now,
        email_contacts_contact_id=list(new.contact_ids),
        email_companies_company_id=list(new.company_ids),
        raw_copies_rule=raw.get("rule") if new.raw_copy else None,
        raw_copies_content=raw.get("content"), raw_copies_blob_sha256=raw.get("blob_sha256"),
        raw_copies_created_at=raw.get("created_at", now),
        thread_refs_portal_id=new.portal_id, thread_refs_message_id=list(new.refs),
        **{f"events_{k}": [e[k] for e in events]
           for k in ("portal_id", "user_id", "type", "at", "machine", "detail")},
    )
    assert found is not None
    email_id, thread_id = int(found[0]), int(found[1])
    await run.insert(_INSERT[Attachment], [{**a, "email_id": email_id}
                                           for a in new.attachments])
    return email_id, thread_id


async def write(session: AsyncSession, new: NewEmail) -> tuple[int, int]:
    """Insert ``new``'s rows in the session's transaction; its (email id, thread id)."""
    run = await statements.of_session(session)
    if isinstance(run, statements.AsyncpgRunner):
        return await _write_in_one(run, new)
    return await _write_each(run, new)


async def _write_each(run: statements.Runner, new: NewEmail) -> tuple[int, int]:
    """A statement per table (SQLite: each a few µs on the loop thread)."""
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
