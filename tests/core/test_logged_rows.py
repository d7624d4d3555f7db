"""core._logged_rows: a new email's rows. On PostgreSQL they are written in one
statement (a WITH of INSERTs); on SQLite one statement per table. Both write the same
rows: here on each backend, with both ways where they run, compared row by row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import _logged_rows, accounts
from core._logged_rows import NewEmail
from core.storage import statements
from core.storage.db import Database, migrate
from core.storage.models import (
    Attachment,
    Company,
    Contact,
    Email,
    EmailCompany,
    EmailContact,
    EmailSource,
    Event,
    RawCopy,
    Thread,
    ThreadRef,
)
from tests.support import postgres

Write = Callable[[statements.Runner, NewEmail], Awaitable[tuple[int, int]]]


async def _setup(database: Database) -> tuple[int, int, list[int], list[int]]:
    async with database.transaction() as session:
        portal = (await accounts.create_portal(session, "p")).portal
        user = (await accounts.add_user(session, portal.id, "rep@ourco.example")).user
        companies = [Company(portal_id=portal.id, domain=f"c{n}.example", name=f"C{n}")
                     for n in range(2)]
        session.add_all(companies)
        await session.flush()
        contacts = [Contact(portal_id=portal.id, email=f"p{n}@c{n}.example", name="",
                            company_id=companies[n].id) for n in range(2)]
        session.add_all(contacts)
        await session.flush()
        return portal.id, user.id, [c.id for c in contacts], [c.id for c in companies]


def _new(portal_id: int, user_id: int, n: int, *, thread_id: int | None = None,
         contacts: tuple[int, ...] = (), companies: tuple[int, ...] = (),
         full: bool = False) -> NewEmail:
    at = datetime(2026, 12, 1, 12, n, tzinfo=UTC)
    email = {"portal_id": portal_id, "message_id": f"<{n}@x>", "synthetic_message_id": False,
             "thread_reason": "new", "direction": "outgoing", "user_id": user_id,
             "from_email": "rep@ourco.example", "from_name": "Rep",
             "to": [{"email": "p0@c0.example", "name": "P ü"}], "cc": [],
             "subject": f"Hello {n}", "sent_at": at, "text": "body", "reply_text": "body",
             "html": "<p>body</p>", "size": 4096, "parse_notes": ["a note"],
             "automatic": None, "auth": {"spf": "pass"} if full else None,
             "language": "en", "created_at": at}
    return NewEmail(
        portal_id, email, "bcc", thread_id=thread_id, subject=f"Hello {n}",
        contact_ids=contacts, company_ids=companies,
        raw_copy=({"rule": "headers", "content": b"From: x\r\n", "created_at": at}
                  if n % 2 == 0 else {"rule": "full", "blob_sha256": None, "created_at": at}),
        attachments=({"filename": "a.pdf", "content_type": "application/pdf", "size": 3,
                      "sha256": "0" * 64, "blob_sha256": None, "inline": False,
                      "content_id": None},) if full else (),
        refs=(f"<{n}@x>", f"<{n}-parent@x>") if thread_id is None else (f"<{n}@x>",),
        events=tuple({"portal_id": portal_id, "user_id": user_id, "type": kind, "at": at,
                      "detail": {"subject": f"Hello {n}", "n": n}}
                     for kind in (("logged", "reply") if full else ("logged",))))


async def _rows(database: Database, email_id: int) -> dict[str, Any]:
    async with database.read() as session:
        email = await session.get(Email, email_id)
        assert email is not None

        async def of(model: Any, *columns: str) -> list[tuple[Any, ...]]:
            table = model.__table__
            where = (table.c.thread_id == email.thread_id if model is ThreadRef
                     else table.c.email_id == email_id)
            found = await session.execute(select(*(table.c[c] for c in columns)).where(where))
            return sorted(tuple(r) for r in found)

        thread = await session.get(Thread, email.thread_id)
        assert thread is not None
        return {
            "email": {c.key: getattr(email, c.key) for c in Email.__table__.c
                      if c.key not in ("id", "thread_id", "message_id", "search_vector")},
            "thread": thread.subject,
            "sources": await of(EmailSource, "source"),
            "contacts": await of(EmailContact, "contact_id"),
            "companies": await of(EmailCompany, "company_id"),
            "raw": await of(RawCopy, "rule", "content", "blob_sha256", "created_at"),
            "attachments": await of(Attachment, "filename", "content_type", "size",
                                    "sha256", "blob_sha256", "inline", "content_id"),
            "refs": len(await of(ThreadRef, "message_id")),
            "events": await of(Event, "type", "user_id", "at", "machine"),
            "details": [e.detail for e in await session.scalars(
                select(Event).where(Event.email_id == email_id).order_by(Event.type))],
        }


async def _write(database: Database, write: Write, new: NewEmail) -> tuple[int, int]:
    async def work(session: AsyncSession) -> tuple[int, int]:
        return await write(await statements.of_session(session), new)

    return await database.run(work)


async def test_both_ways_write_the_same_rows(database: Database) -> None:
    portal_id, user_id, contacts, companies = await _setup(database)
    ways: list[Write] = [_logged_rows._write_each]
    if not database.is_sqlite:
        ways.append(_logged_rows._write_in_one)
    seen = []
    for offset, write in enumerate(ways):
        base = 10 * offset
        first_id, thread_id = await _write(database, write, _new(
            portal_id, user_id, base, contacts=tuple(contacts), companies=tuple(companies),
            full=True))
        reply_id, reply_thread = await _write(database, write, _new(
            portal_id, user_id, base + 1, thread_id=thread_id))
        assert reply_thread == thread_id and reply_id != first_id
        first, reply = await _rows(database, first_id), await _rows(database, reply_id)
        assert first["contacts"] == [(c,) for c in sorted(contacts)]
        assert first["companies"] == [(c,) for c in sorted(companies)]
        assert first["refs"] == 3 and len(first["events"]) == 2
        assert first["details"][0] == {"subject": f"Hello {base}", "n": base}
        assert first["email"]["auth"] == {"spf": "pass"}
        assert first["email"]["to"] == [{"email": "p0@c0.example", "name": "P ü"}]
        assert reply["contacts"] == reply["attachments"] == []
        assert reply["raw"][0][0] == "full" and first["raw"][0][1] == b"From: x\r\n"
        seen.append((first, reply))
    if len(seen) == 2:
        # Beside the subjects and times, which differ by design, the same rows.
        for one, other in zip(seen[0], seen[1], strict=True):
            for rows in (one, other):
                rows["email"].pop("subject"), rows["email"].pop("sent_at")
                rows["email"].pop("created_at"), rows.pop("thread"), rows.pop("details")
                rows["raw"] = [r[:3] for r in rows["raw"]]
                rows["events"] = [e[:2] + e[3:] for e in rows["events"]]
            assert one == other


async def test_a_copy_is_a_duplicate_and_a_reply_joins_its_thread(tmp_path: Path) -> None:
    """Through log_message on each backend: admission reads the logged copy and the
    claimed Message-IDs in one statement (``_logged_copy_and_claims``)."""
    from core import pipeline
    from core.runtime import Runtime, Settings
    from core.types import Channel, Envelope, IngestOutcome

    for backend in ("sqlite", "postgres"):
        url = await postgres.create_database() if backend == "postgres" else ""
        runtime = Runtime(Settings(data_dir=tmp_path / backend, db_url=url,
                                   bcc_domain="bcc.example"))
        try:
            await migrate(runtime.db)
            async with runtime.db.transaction() as session:
                portal = (await accounts.create_portal(session, "p")).portal
                await accounts.add_user(session, portal.id, "rep@ourco.example")
            address = f"{portal.bcc_token}@bcc.example"
            how = pipeline.Arrival(Channel.SMTP, (pipeline.Delivery(portal.id, Envelope(
                mail_from="rep@ourco.example", rcpt_tos=(address,),
                logging_address=address)),))

            def message(n: int, *, refs: str = "") -> bytes:
                return (f"From: Rep <rep@ourco.example>\r\nTo: buyer@acme.example\r\n"
                        f"Subject: Quote {n}\r\nMessage-ID: <m{n}@ourco.example>\r\n"
                        f"{refs}Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nHello\r\n"
                        ).encode()

            first = (await pipeline.log_message(runtime, message(1), how)).only()
            again = (await pipeline.log_message(runtime, message(1), how)).only()
            reply = (await pipeline.log_message(runtime, message(2, refs=(
                "In-Reply-To: <m1@ourco.example>\r\n")), how)).only()
            other = (await pipeline.log_message(runtime, message(3), how)).only()
            assert first.outcome is IngestOutcome.LOGGED
            assert (again.outcome, again.email_id) == (IngestOutcome.DUPLICATE, first.email_id)
            assert reply.outcome is IngestOutcome.LOGGED and reply.email_id != first.email_id
            assert reply.thread_id == first.thread_id != other.thread_id
        finally:
            await runtime.close()
            if url:
                await postgres.drop_database(url)
