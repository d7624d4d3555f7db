"""Erasure and the purge in chunks (core.deletion.erase_contact, retention.purge_expired),
with chunks of 2 so a handful of rows crosses several, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from core import accounts, audit, deletion, queries, retention
from core.audit import NotLoggedReason
from core.errors import NotFound
from core.storage.blobs import LocalBlobStore
from core.storage.db import Database
from core.storage.models import Contact, Email, IngestLogEntry
from tests.core.test_retention import USER, _ingest
from tests.support.mail import message

CUSTOMER = "eve@chunks.example"


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deletion, "ERASE_CHUNK", 2)
    monkeypatch.setattr(retention, "PURGE_CHUNK", 2)


async def _portal(db: Database, name: str) -> int:
    async with db.transaction() as session:
        created = await accounts.create_portal(session, name)
        await accounts.add_user(session, created.portal.id, USER)
        return created.portal.id


async def _customer(db: Database, blobs: LocalBlobStore, portal_id: int, emails: int,
                    entries: int) -> int:
    for _ in range(emails):
        await _ingest(db, blobs, portal_id, message(
            sender=USER, to=CUSTOMER, message_id=make_msgid()).as_bytes())
    async with db.transaction() as session:
        for _ in range(entries):
            audit.record(session, portal_id, NotLoggedReason.NOT_IN_THREAD, "x",
                         source="rule", sender=CUSTOMER)
    async with db.read() as session:
        return (await queries.contacts_by_email(session, portal_id, CUSTOMER))[0].id


async def _count(db: Database, model: type[Email] | type[IngestLogEntry] | type[Contact],
                 portal_id: int) -> int:
    async with db.read() as session:
        return await session.scalar(select(func.count()).select_from(model).where(
            model.portal_id == portal_id)) or 0


async def _left(db: Database, portal_id: int) -> list[int]:
    """The portal's emails, audit entries and contacts."""
    return [await _count(db, m, portal_id) for m in (Email, IngestLogEntry, Contact)]


async def test_erasure_in_chunks_removes_all_and_only_the_portals(
    database: Database, blobs: LocalBlobStore
) -> None:
    """Five emails and five audit entries in chunks of two: all gone with the contact;
    the same address in another portal keeps everything (a cross-tenant check)."""
    mine, theirs = await _portal(database, "Mine"), await _portal(database, "Theirs")
    contact_id = await _customer(database, blobs, mine, emails=5, entries=5)
    await _customer(database, blobs, theirs, emails=3, entries=3)
    with pytest.raises(NotFound):  # another portal's contact, by id
        await deletion.erase_contact(database, theirs, contact_id)

    erased = await deletion.erase_contact(database, mine, contact_id)

    assert (erased.emails, erased.audit_entries) == (5, 5)
    assert await _left(database, mine) == [0, 0, 0]
    assert await _left(database, theirs) == [3, 3, 1]
    with pytest.raises(NotFound):  # done: a second call finds no contact
        await deletion.erase_contact(database, mine, contact_id)


async def test_an_erasure_cut_short_is_finished_by_the_next_call(
    database: Database, blobs: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the first chunk leaves the contact (the caller got no answer
    saying it was done) with fewer emails; calling again removes the rest."""
    portal_id = await _portal(database, "Crash")
    contact_id = await _customer(database, blobs, portal_id, emails=5, entries=1)
    real = retention.delete_emails
    calls = 0

    async def dies_on_the_second_chunk(session: object, ids: list[int]) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the process died")
        return await real(session, ids)  # type: ignore[arg-type]

    monkeypatch.setattr(deletion, "delete_emails", dies_on_the_second_chunk)
    with pytest.raises(RuntimeError):
        await deletion.erase_contact(database, portal_id, contact_id)
    assert await _count(database, Email, portal_id) == 3
    assert await _count(database, Contact, portal_id) == 1

    monkeypatch.setattr(deletion, "delete_emails", real)
    erased = await deletion.erase_contact(database, portal_id, contact_id)
    assert erased.emails == 3
    assert await _left(database, portal_id) == [0, 0, 0]


async def test_purge_in_chunks_removes_every_portals_expired_rows(
    database: Database, blobs: LocalBlobStore
) -> None:
    """Deleted emails past 90 days in two portals and old audit entries, five of each,
    in chunks of two: all gone; a recently deleted email stays."""
    t0 = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
    portals = [await _portal(database, "One"), await _portal(database, "Two")]
    for portal_id in portals:
        await _customer(database, blobs, portal_id, emails=5, entries=5)
    async with database.transaction() as session:
        await session.execute(update(Email).values(deleted_at=t0))
        await session.execute(update(IngestLogEntry).values(at=t0))
    recent = await _ingest(database, blobs, portals[0], message(
        sender=USER, to=CUSTOMER, message_id=make_msgid()).as_bytes())
    async with database.transaction() as session:
        await deletion.delete_email(session, portals[0], recent)

    counts = await retention.purge(database, blobs, t0 + timedelta(days=91))

    assert (counts["deleted_emails"], counts["ingest_log"]) == (10, 10)
    assert [await _count(database, Email, p) for p in portals] == [1, 0]
    assert [await _count(database, IngestLogEntry, p) for p in portals] == [0, 0]
