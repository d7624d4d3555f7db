"""Retention rules and deletion, against real storage on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import (
    accounts,
    audit,
    deletion,
    extension_grants,
    pipeline,
    queries,
    retention,
    sessions,
    web_accounts,
)
from core.audit import NotLoggedReason
from core.errors import NotFound
from core.storage.blobs import LocalBlobStore, sha256_hex
from core.storage.db import Database
from core.storage.models import Blob, Email, IngestLogEntry, Portal, RawCopy
from core.storage.models.web import WebLink, WebSession
from core.types import Envelope, Source
from core.web_accounts import LinkPurpose
from tests.support.mail import message

USER = "rep@ourco.example"
T0 = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


async def _portal(db: Database) -> int:
    async with db.transaction() as session:
        created = await accounts.create_portal(session, "Retention")
        await accounts.add_user(session, created.portal.id, USER)
        return created.portal.id


async def _ingest(db: Database, blobs: LocalBlobStore, portal_id: int, raw: bytes,
                  source: Source | None = None) -> int:
    prepared = await pipeline.prepare(raw)

    async def work(session: AsyncSession) -> pipeline.IngestResult:
        portal = await session.get(Portal, portal_id)
        assert portal is not None
        return await pipeline.ingest(session, portal=portal, prepared=prepared,
                                     envelope=Envelope(source_hint=source), blobs=blobs,
                                     bcc_domain="bcc.test")

    result = await db.run(work)
    assert result.email_id is not None
    return result.email_id


async def _age_everything(db: Database, when: datetime) -> None:
    """Pretend every raw copy and audit entry was made at ``when``."""
    async with db.transaction() as session:
        await session.execute(update(RawCopy).values(created_at=when))
        await session.execute(update(IngestLogEntry).values(at=when))


async def _rules(db: Database, email_id: int) -> list[str]:
    async with db.read() as session:
        rows = await session.scalars(select(RawCopy.rule).where(RawCopy.email_id == email_id))
        return sorted(rows)


@pytest.mark.parametrize(
    ("source", "rule", "keep_for"),
    [
        (Source.SYNC, "sync_headers", timedelta(days=7)),
        (Source.EXTENSION, "extension_full", timedelta(days=1)),
        (Source.CRM_SEND, "crm_send_headers", timedelta(days=365)),
    ],
)
async def test_raw_copy_kept_exactly_as_long_as_its_rule(
    database: Database, blobs: LocalBlobStore, source: Source, rule: str, keep_for: timedelta
) -> None:
    """A raw copy survives a purge one second before its limit and is gone one second after."""
    portal_id = await _portal(database)
    raw = message(sender=USER, to="amy@keep.example", message_id=make_msgid()).as_bytes()
    email_id = await _ingest(database, blobs, portal_id, raw, source)
    assert await _rules(database, email_id) == [rule]
    await _age_everything(database, T0)

    counts = await retention.purge(database, blobs, T0 + keep_for - timedelta(seconds=1))
    assert counts[rule] == 0 and await _rules(database, email_id) == [rule]
    counts = await retention.purge(database, blobs, T0 + keep_for + timedelta(seconds=1))
    assert counts[rule] == 1 and await _rules(database, email_id) == []
    async with database.read() as session:
        email = await queries.email(session, portal_id, email_id)  # the email itself stays
        assert email.subject == "Quarterly numbers"


async def test_extension_copy_is_the_full_message_and_others_are_headers(
    database: Database, blobs: LocalBlobStore
) -> None:
    """Extension-logged mail keeps the whole raw message; BCC keeps the header block only."""
    portal_id = await _portal(database)
    raw = message(sender=USER, to="bo@raw.example", message_id=make_msgid(),
                  body="the body text").as_bytes()
    email_id = await _ingest(database, blobs, portal_id, raw, Source.EXTENSION)
    await _ingest(database, blobs, portal_id, raw)  # the BCC copy of the same message
    async with database.read() as session:
        copies = {c.rule: c for c in await session.scalars(
            select(RawCopy).where(RawCopy.email_id == email_id))}
    full = copies["extension_full"]
    assert full.blob_sha256 is not None and (await blobs.get(full.blob_sha256)) == raw
    headers = copies["header_metadata"].content  # kept in the row, not as a file
    assert headers is not None and copies["header_metadata"].blob_sha256 is None
    assert b"Subject: Quarterly numbers" in headers and b"the body text" not in headers


async def test_header_metadata_kept_for_current_and_previous_month(
    database: Database, blobs: LocalBlobStore
) -> None:
    """Headers from mid-October stay through November and go on the first of December."""
    portal_id = await _portal(database)
    email_id = await _ingest(database, blobs, portal_id, message(
        sender=USER, to="cy@month.example", message_id=make_msgid()).as_bytes())
    await _age_everything(database, T0)
    await retention.purge(database, blobs, datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    assert await _rules(database, email_id) == ["header_metadata"]
    counts = await retention.purge(database, blobs, datetime(2026, 12, 1, 0, 1, tzinfo=UTC))
    assert counts["header_metadata"] == 1
    assert await _rules(database, email_id) == []


async def test_deleted_email_restorable_for_90_days_then_gone_with_unshared_blobs(
    database: Database, blobs: LocalBlobStore
) -> None:
    """Deletion hides an email; restore works until day 90; the purge then removes the
    email and its own files, and keeps a file another email still uses."""
    portal_id = await _portal(database)
    shared, own = b"shared file bytes", b"only in the deleted email"
    doomed_msg = message(sender=USER, to="di@del.example", message_id=make_msgid())
    doomed_msg.add_attachment(shared, maintype="application", subtype="octet-stream",
                              filename="shared.bin")
    doomed_msg.add_attachment(own, maintype="application", subtype="octet-stream",
                              filename="own.bin")
    doomed = await _ingest(database, blobs, portal_id, doomed_msg.as_bytes())
    keeper_msg = message(sender=USER, to="di@del.example", message_id=make_msgid(),
                         subject="keeper")
    keeper_msg.add_attachment(shared, maintype="application", subtype="octet-stream",
                              filename="same-content.bin")
    keeper = await _ingest(database, blobs, portal_id, keeper_msg.as_bytes())

    async with database.transaction() as session:
        email = await deletion.delete_email(session, portal_id, doomed)
        deleted_at = email.deleted_at
    assert deleted_at is not None
    async with database.read() as session:
        with pytest.raises(NotFound):
            await queries.email(session, portal_id, doomed)
        timeline = await queries.timeline(session, portal_id,
                                          (await queries.contacts_by_email(
                                              session, portal_id, "di@del.example"))[0].id,
                                          limit=10)
        assert [e.id for e in timeline] == [keeper]
    async with database.transaction() as session:
        with pytest.raises(NotFound):
            await deletion.restore_email(session, portal_id, doomed,
                                         now=deleted_at + timedelta(days=90, seconds=1))
    async with database.transaction() as session:
        await deletion.restore_email(session, portal_id, doomed,
                                     now=deleted_at + timedelta(days=89))
    async with database.transaction() as session:
        await deletion.delete_email(session, portal_id, doomed)
        await session.execute(update(Email).where(Email.id == doomed).values(deleted_at=T0))

    counts = await retention.purge(database, blobs, T0 + timedelta(days=89))
    assert counts["deleted_emails"] == 0
    counts = await retention.purge(database, blobs, T0 + timedelta(days=90, seconds=1))
    assert counts["deleted_emails"] == 1
    assert counts["blobs"] >= 1
    async with database.read() as session:
        assert await session.get(Email, doomed) is None
        assert await session.get(Blob, sha256_hex(own)) is None
        assert await session.get(Blob, sha256_hex(shared)) is not None
        assert (await queries.email(session, portal_id, keeper)).attachments[0].blob_sha256
    assert not blobs.path(sha256_hex(own)).exists()
    assert blobs.path(sha256_hex(shared)).read_bytes() == shared


async def test_ingest_log_kept_30_days(database: Database, blobs: LocalBlobStore) -> None:
    """Audit entries are purged after 30 days and not before."""
    portal_id = await _portal(database)
    async with database.transaction() as session:
        audit.record(session, portal_id, NotLoggedReason.NOT_IN_THREAD, "not part of a thread",
                     source="rule", sender="x@y.example")
    await _age_everything(database, T0)
    assert (await retention.purge(database, blobs, T0 + timedelta(days=29)))["ingest_log"] == 0
    assert (await retention.purge(database, blobs, T0 + timedelta(days=31)))["ingest_log"] == 1


async def test_erasing_a_contact_removes_what_only_they_needed(
    database: Database, blobs: LocalBlobStore
) -> None:
    """Erase removes the contact's own emails, files, events and audit entries; an email
    shared with another contact stays, without the erased contact."""
    portal_id = await _portal(database)
    own_file = b"private to the erased person"
    alone = message(sender=USER, to="eve@erase.example", message_id=make_msgid())
    alone.add_attachment(own_file, maintype="application", subtype="octet-stream",
                         filename="eve.bin")
    alone_id = await _ingest(database, blobs, portal_id, alone.as_bytes())
    shared_id = await _ingest(database, blobs, portal_id, message(
        sender=USER, to=["eve@erase.example", "fred@erase.example"],
        message_id=make_msgid()).as_bytes())
    async with database.transaction() as session:
        audit.record(session, portal_id, NotLoggedReason.NOT_IN_THREAD, "x", source="rule",
                     sender="eve@erase.example")
        eve = (await queries.contacts_by_email(session, portal_id, "eve@erase.example"))[0]
        erased = await deletion.delete_contact(session, portal_id, eve.id, erase=True)
    assert (erased.emails, erased.attachments, erased.audit_entries) == (1, 1, 1)
    assert erased.events == 1
    assert await retention.remove_orphan_blobs(database, blobs) >= 1
    async with database.read() as session:
        assert await session.get(Email, alone_id) is None
        kept = await queries.email(session, portal_id, shared_id)
        fred = (await queries.contacts_by_email(session, portal_id, "fred@erase.example"))[0]
        assert [link.contact_id for link in kept.contact_links] == [fred.id]
        assert await queries.contacts_by_email(session, portal_id, "eve@erase.example") == []
    assert not blobs.path(sha256_hex(own_file)).exists()


async def test_blob_files_with_no_row_are_removed_once_old(
    database: Database, blobs: LocalBlobStore
) -> None:
    """A file left by a transaction that failed after writing it goes at the next purge;
    a referenced file, and a young one (its transaction may be under way), stay."""
    portal_id = await _portal(database)
    email_id = await _ingest(database, blobs, portal_id, message(
        sender=USER, to="di@files.example", message_id=make_msgid()).as_bytes(),
        Source.EXTENSION)  # a full raw copy: a referenced blob file
    async with database.read() as session:
        kept = (await session.scalars(select(RawCopy.blob_sha256).where(
            RawCopy.email_id == email_id))).one()
    assert kept is not None
    stray, young = await blobs.put(b"rolled back"), await blobs.put(b"in flight")
    an_hour_ago = time.time() - 3700
    for digest in (kept, stray):
        os.utime(blobs.path(digest), (an_hour_ago, an_hour_ago))

    counts = await retention.purge(database, blobs, datetime.now(UTC))
    assert counts["blobs"] == 1
    assert not blobs.exists(stray)
    assert blobs.exists(kept) and blobs.exists(young)
    async with database.read() as session:  # the claim on the stray's digest was undone
        assert await session.get(Blob, stray) is None


async def test_ended_links_codes_and_sessions_are_purged(
    database: Database, blobs: LocalBlobStore
) -> None:
    """The purge deletes sign-in, reset, invitation and set-up links once spent or
    expired, extension codes' rows a second lifetime past their expiry (until then a
    replay is still recognised), and ended sessions; live ones stay."""
    now = datetime.now(UTC).replace(microsecond=0)
    async with database.transaction() as session:
        portal = await accounts.create_portal(session, "Links")
        user = (await accounts.add_user(session, portal.portal.id, USER)).user
        login = await web_accounts.enable(session, user)
        account = web_accounts.Account(user, login)

        async def link(purpose: LinkPurpose, made: datetime) -> int:
            issued = await web_accounts.issue_link(session, portal.portal.id, purpose,
                                                   user_id=user.id, email="x@ourco.example",
                                                   now=made)
            return issued.link.id

        hour = timedelta(hours=1)
        live_sign_in = await link(LinkPurpose.SIGN_IN, now - timedelta(minutes=5))
        expired_reset = await link(LinkPurpose.RESET, now - hour)
        live_invite = await link(LinkPurpose.INVITE, now - timedelta(days=6))
        expired_setup = await link(LinkPurpose.SETUP, now - timedelta(days=8))
        spent_invite = await link(LinkPurpose.INVITE, now - hour)
        await session.execute(update(WebLink).where(WebLink.id == spent_invite)
                              .values(used_at=now - hour))
        for made, digest in ((now - timedelta(seconds=30), "a" * 64),
                             (now - timedelta(minutes=3), "b" * 64)):
            session.add(WebLink(portal_id=portal.portal.id, user_id=user.id,
                                purpose=extension_grants.CODE_PURPOSE, token_hash=digest,
                                created_at=made, used_at=made,
                                expires_at=made + extension_grants.CODE_FOR))
        live, idle, ended = [(await sessions.start(session, account, now=now - hour)
                              ).session.id for _ in range(3)]
    async with database.transaction() as session:
        await session.execute(update(WebSession).where(WebSession.id == idle)
                              .values(last_seen_at=now - sessions.IDLE - hour))
        await session.execute(update(WebSession).where(WebSession.id == ended)
                              .values(expires_at=now - timedelta(minutes=1)))

    counts = await retention.purge(database, blobs, now)
    assert counts["web_links"] == 4 and counts["web_sessions"] == 2
    async with database.read() as session:
        kept = set(await session.scalars(select(WebLink.id).where(
            WebLink.purpose != extension_grants.CODE_PURPOSE)))
        codes = list(await session.scalars(select(WebLink.token_hash).where(
            WebLink.purpose == extension_grants.CODE_PURPOSE)))
        left = list(await session.scalars(select(WebSession.id)))
    assert kept == {live_sign_in, live_invite}
    assert not {expired_reset, expired_setup, spent_invite} & kept
    assert codes == ["a" * 64]
    assert left == [live]
    assert (await retention.purge(database, blobs, now))["web_links"] == 0
