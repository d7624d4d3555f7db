"""The ingest pipeline against real storage, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts, audit, pipeline, queries
from core.errors import MessageTooLarge, SenderNotAllowed
from core.runtime import Runtime, Settings
from core.storage.blobs import LocalBlobStore
from core.storage.db import Database
from core.storage.models import (
    Blob,
    Company,
    Contact,
    Deal,
    Email,
    EmailDeal,
    Event,
    IngestLogEntry,
    Portal,
)
from core.types import Channel, Envelope, IngestOutcome, Source
from tests.support.mail import message

BCC_DOMAIN = "bcc.test"
USER = "rep@ourco.example"


async def _portal(db: Database, **settings: Any) -> int:
    async with db.transaction() as session:
        created = await accounts.create_portal(session, "Pipeline")
        await accounts.add_user(session, created.portal.id, USER, aliases=("rep@alias.example",))
        accounts.update_settings(created.portal, accounts.SettingsChange(**settings))
        return created.portal.id


async def _ingest(db: Database, blobs: LocalBlobStore, portal_id: int, raw: bytes,
                  envelope: Envelope | None = None) -> pipeline.IngestResult:
    prepared = await pipeline.prepare(raw)

    async def work(session: AsyncSession) -> pipeline.IngestResult:
        portal = await session.get(Portal, portal_id)
        assert portal is not None
        return await pipeline.ingest(session, portal=portal, prepared=prepared,
                                     envelope=envelope or Envelope(), blobs=blobs,
                                     bcc_domain=BCC_DOMAIN)

    return await db.run(work)


def _id(value: int | None) -> int:
    """A logged result's email or thread id (a test fails here on None)."""
    assert value is not None
    return value


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


async def test_outgoing_email_creates_contacts_and_companies(
        database: Database, blobs: LocalBlobStore) -> None:
    """To/Cc become contacts; colleagues share a company; free mail gets none; users don't."""
    portal_id = await _portal(database)
    raw = message(sender=USER, to=["Ann <ann@acme.example>", "bob@gmail.com", USER],
                  cc=["carl@acme.example", f"x@{BCC_DOMAIN}", "rep@alias.example"],
                  message_id=make_msgid()).as_bytes()
    result = await _ingest(database, blobs, portal_id, raw)
    assert result.outcome == "logged"
    async with database.read() as session:
        contacts = {c.email: c for c in await session.scalars(
            select(Contact).where(Contact.portal_id == portal_id))}
        assert set(contacts) == {"ann@acme.example", "bob@gmail.com", "carl@acme.example"}
        assert contacts["ann@acme.example"].name == "Ann"
        assert contacts["bob@gmail.com"].company_id is None
        assert contacts["ann@acme.example"].company_id == contacts["carl@acme.example"].company_id
        company = await session.get(Company, contacts["ann@acme.example"].company_id)
        assert company is not None and (company.domain, company.name) == ("acme.example", "Acme")
        events = (await session.scalars(select(Event).where(Event.portal_id == portal_id))).all()
        assert [(e.type, e.email_id) for e in events] == [("logged", result.email_id)]


async def test_duplicate_adds_a_source_not_an_email(
        database: Database, blobs: LocalBlobStore) -> None:
    """The same Message-ID by BCC and then by extension is one email with two sources."""
    portal_id = await _portal(database)
    raw = message(sender=USER, to="dan@dup.example", message_id=make_msgid()).as_bytes()
    first = await _ingest(database, blobs, portal_id, raw)
    second = await _ingest(database, blobs, portal_id, raw,
                           Envelope(source_hint=Source.EXTENSION))
    assert (second.outcome, second.email_id) == ("duplicate", first.email_id)
    async with database.read() as session:
        email = await queries.email(session, portal_id, _id(first.email_id))
        assert [s.source for s in email.sources] == ["bcc", "extension"]
        count = await session.scalar(select(func.count()).select_from(Email)
                                     .where(Email.portal_id == portal_id))
        assert count == 1


async def test_concurrent_copies_of_one_message_make_one_email(
        database: Database, blobs: LocalBlobStore) -> None:
    """Ten simultaneous deliveries of one message race to one row, every caller gets its id."""
    portal_id = await _portal(database)
    raw = message(sender=USER, to="eve@race.example", message_id=make_msgid()).as_bytes()
    results = await asyncio.gather(*(_ingest(database, blobs, portal_id, raw) for _ in range(10)))
    assert len({r.email_id for r in results}) == 1
    assert sorted(r.outcome for r in results) == ["duplicate"] * 9 + ["logged"]


async def test_reply_threads_and_new_people_start_a_new_thread(
        database: Database, blobs: LocalBlobStore) -> None:
    """A reply joins by In-Reply-To; re-using the thread to write to strangers starts anew."""
    portal_id = await _portal(database)
    root_id = make_msgid()
    root = await _ingest(database, blobs, portal_id, message(
        sender=USER, to="fay@thread.example", message_id=root_id).as_bytes())
    reply = await _ingest(database, blobs, portal_id, message(
        sender=USER, to="fay@thread.example", subject="Re: Quarterly numbers",
        message_id=make_msgid(), in_reply_to=root_id).as_bytes())
    reused = await _ingest(database, blobs, portal_id, message(
        sender=USER, to="gus@unrelated.example", subject="Fwd: Quarterly numbers",
        message_id=make_msgid(), in_reply_to=root_id).as_bytes())
    assert reply.thread_id == root.thread_id
    assert reused.thread_id != root.thread_id
    async with database.read() as session:
        reply_email = await queries.email(session, portal_id, _id(reply.email_id))
        reused_email = await queries.email(session, portal_id, _id(reused.email_id))
        assert (reply_email.thread_reason, reused_email.thread_reason) == ("in_reply_to", "new")
        thread = await queries.thread(session, portal_id, _id(root.thread_id))
        assert thread.subject == "Quarterly numbers"


async def test_reply_arriving_before_its_parent_shares_its_thread(
    database: Database, blobs: LocalBlobStore
) -> None:
    """Out of order: the parent, logged after its reply, joins the reply's thread."""
    portal_id = await _portal(database)
    parent_id = make_msgid()
    reply = await _ingest(database, blobs, portal_id, message(
        sender=USER, to="hal@order.example", message_id=make_msgid(),
        in_reply_to=parent_id).as_bytes())
    parent = await _ingest(database, blobs, portal_id, message(
        sender=USER, to="hal@order.example", message_id=parent_id).as_bytes())
    assert parent.thread_id == reply.thread_id


async def test_rule_forwarded_mail_needs_a_logged_thread(
        database: Database, blobs: LocalBlobStore) -> None:
    """Forwarding-rule mail is stored only when it replies to a logged email."""
    portal_id = await _portal(database)
    root_id = make_msgid()
    await _ingest(database, blobs, portal_id, message(
        sender=USER, to="ida@rule.example", message_id=root_id).as_bytes())
    unrelated = await _ingest(database, blobs, portal_id, message(
        sender="ida@rule.example", to=USER, message_id=make_msgid()).as_bytes(),
        Envelope(mail_from=USER))
    assert (unrelated.outcome, unrelated.reason) == ("not_logged", "not part of a logged thread")
    reply = await _ingest(database, blobs, portal_id, message(
        sender="ida@rule.example", to=USER, message_id=make_msgid(),
        in_reply_to=root_id).as_bytes(), Envelope(mail_from=USER))
    assert reply.outcome == "logged"
    # Resent-From naming the user also identifies a forwarding rule.
    resent = message(sender="ida@rule.example", to=USER, message_id=make_msgid(),
                     in_reply_to=root_id)
    resent["Resent-From"] = USER
    assert (await _ingest(database, blobs, portal_id, resent.as_bytes())).outcome == "logged"


async def test_unknown_sender_is_refused(database: Database, blobs: LocalBlobStore) -> None:
    """No user in From, envelope or forwarding headers: SenderNotAllowed, nothing stored."""
    portal_id = await _portal(database)
    with pytest.raises(SenderNotAllowed):
        await _ingest(database, blobs, portal_id, message(
            sender="mallory@evil.example", to=USER, message_id=make_msgid()).as_bytes(),
            Envelope(mail_from="mallory@evil.example"))
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)
                                    .where(Contact.portal_id == portal_id)) == 0


async def test_settings_shape_what_is_stored(database: Database, blobs: LocalBlobStore) -> None:
    """log_attachments off lists files unstored; auto-create off makes no contacts; never-log."""
    portal_id = await _portal(database, log_attachments=False, auto_create_contacts=False,
                              never_log=["blocked.example"])
    msg = message(sender=USER, to=["jan@new.example", "kay@blocked.example"],
                  message_id=make_msgid())
    msg.add_attachment(b"secret bytes", maintype="application", subtype="octet-stream",
                       filename="s.bin")
    result = await _ingest(database, blobs, portal_id, msg.as_bytes())
    blocked_only = await _ingest(database, blobs, portal_id, message(
        sender=USER, to="lou@blocked.example", message_id=make_msgid()).as_bytes())
    assert blocked_only.outcome == "not_logged"
    async with database.read() as session:
        email = await queries.email(session, portal_id, _id(result.email_id))
        assert [(a.filename, a.blob_sha256) for a in email.attachments] == [("s.bin", None)]
        assert email.contact_links == []
        digest = email.attachments[0].sha256
        assert await session.get(Blob, digest) is None
    assert not blobs.path(digest).exists()


async def test_tags_associate_deals(database: Database, blobs: LocalBlobStore) -> None:
    """A +deal-<id> tag links the email to that deal of the portal, and ignores others'."""
    portal_id = await _portal(database)
    other_portal = await _portal(database)
    async with database.transaction() as session:
        deal = Deal(portal_id=portal_id, name="Big deal")
        foreign = Deal(portal_id=other_portal, name="Not yours")
        session.add_all([deal, foreign])
    result = await _ingest(database, blobs, portal_id, message(
        sender=USER, to="max@deal.example", message_id=make_msgid()).as_bytes(),
        Envelope(tags=(f"deal-{deal.id}", f"deal-{foreign.id}", "junk")))
    async with database.read() as session:
        links = (await session.scalars(select(EmailDeal.deal_id)
                                       .where(EmailDeal.email_id == result.email_id))).all()
        assert links == [deal.id]


async def test_overlong_values_are_clamped_not_refused_forever(
    database: Database, blobs: LocalBlobStore
) -> None:
    """A 250-character display name, a 1200-character Message-ID and an over-long address
    are stored within the columns' limits on both backends, not retried forever."""
    portal_id = await _portal(database)
    long_id = "<" + "x" * 1200 + "@long.example>"
    raw = message(sender=USER, to=[f"{'N' * 250} <nia@long.example>",
                                   f"{'a' * 300}@{'b' * 60}.example"],
                  message_id=long_id, in_reply_to=long_id).as_bytes()
    first = await _ingest(database, blobs, portal_id, raw)
    again = await _ingest(database, blobs, portal_id, raw)
    assert first.outcome == "logged" and again.email_id == first.email_id
    async with database.read() as session:
        email = await queries.email(session, portal_id, _id(first.email_id))
        assert len(email.message_id) <= 998
        nia = (await queries.contacts_by_email(session, portal_id, "nia@long.example"))[0]
        assert len(nia.name) == 200


async def test_gmail_forwarding_rule_is_recognised(
    database: Database, blobs: LocalBlobStore
) -> None:
    """Gmail's forwarding: envelope sender user+caf_=...@, X-Forwarded-For with two
    addresses; a reply on a logged thread forwarded that way is logged."""
    portal_id = await _portal(database)
    root_id = make_msgid()
    await _ingest(database, blobs, portal_id, message(
        sender=USER, to="gil@gmailfwd.example", message_id=root_id).as_bytes())
    reply = message(sender="gil@gmailfwd.example", to=USER, message_id=make_msgid(),
                    in_reply_to=root_id)
    reply["X-Forwarded-For"] = f"{USER} abc123@{BCC_DOMAIN}"
    by_header = await _ingest(database, blobs, portal_id, reply.as_bytes(),
                              Envelope(mail_from="bounces@gmail-relay.example"))
    assert by_header.outcome == "logged"
    second = message(sender="gil@gmailfwd.example", to=USER, message_id=make_msgid(),
                     in_reply_to=root_id)
    tagged = "rep+caf_=abc123=bcc.test@ourco.example"
    by_envelope = await _ingest(database, blobs, portal_id, second.as_bytes(),
                                Envelope(mail_from=tagged))
    assert by_envelope.outcome == "logged"


# --- log_message: the one way in --------------------------------------------------------


@pytest.fixture
async def runtime(database: Database, tmp_path: Path) -> AsyncIterator[Runtime]:
    running = Runtime(Settings(data_dir=tmp_path / "runtime", db_url=database.url,
                               bcc_domain=BCC_DOMAIN))
    yield running
    await running.close()


async def _entries(db: Database, portal_id: int) -> list[IngestLogEntry]:
    async with db.read() as session:
        return list(await audit.entries(session, portal_id, before=None, limit=10))


async def test_log_message_answers_a_typed_result_per_portal(runtime: Runtime) -> None:
    """Logged, then a duplicate: IngestOutcome values with the email and thread, and
    the source as routed."""
    portal_id = await _portal(runtime.db)
    raw = message(sender=USER, to="ann@acme.example", message_id=make_msgid()).as_bytes()
    arrival = pipeline.Arrival.for_portal(Channel.CLI, portal_id)
    first = (await pipeline.log_message(runtime, raw, arrival)).only()
    again = (await pipeline.log_message(runtime, raw, arrival)).only()
    assert (first.outcome, first.source) == (IngestOutcome.LOGGED, Source.BCC)
    assert first.email_id is not None and first.thread_id is not None
    assert (again.outcome, again.email_id, again.thread_id) == (
        IngestOutcome.DUPLICATE, first.email_id, first.thread_id)


async def test_log_message_records_each_portals_refusal_with_its_result(
        runtime: Runtime) -> None:
    """One message for two portals: the one whose user sent it logs it, the other
    refuses it (Refused, not an exception) and has an ingest-log entry; ``only`` raises
    a single portal's refusal."""
    ours, theirs = await _portal(runtime.db), await _portal(runtime.db)
    async with runtime.db.transaction() as session:
        await accounts.add_user(session, ours, "only.here@ourco.example")
    raw = message(sender="only.here@ourco.example", to="ann@acme.example",
                  message_id=make_msgid()).as_bytes()
    how = pipeline.Arrival(Channel.SMTP, (
        pipeline.Delivery(ours, Envelope(logging_address=f"a@{BCC_DOMAIN}")),
        pipeline.Delivery(theirs, Envelope(logging_address=f"b@{BCC_DOMAIN}",
                                           mail_from="bounce@ourco.example"))))
    logged, refused = (await pipeline.log_message(runtime, raw, how)).each
    assert isinstance(logged, pipeline.IngestResult) and logged.outcome is IngestOutcome.LOGGED
    assert isinstance(refused, pipeline.Refused) and refused.portal_id == theirs
    assert isinstance(refused.error, SenderNotAllowed)
    assert await _entries(runtime.db, ours) == []
    [entry] = await _entries(runtime.db, theirs)
    assert (entry.reason_code, entry.source, entry.sender, entry.logging_address,
            entry.envelope_sender, entry.size) == (
        "not_a_user", "smtp", "only.here@ourco.example", f"b@{BCC_DOMAIN}",
        "bounce@ourco.example", len(raw))
    with pytest.raises(SenderNotAllowed):
        (await pipeline.log_message(
            runtime, raw, pipeline.Arrival.for_portal(Channel.CLI, theirs))).only()


async def test_log_message_refuses_an_oversized_header_for_every_portal(
        runtime: Runtime) -> None:
    """A header block past the limit is refused before parsing, for each portal, each
    with its entry; a portal id that does not exist is skipped there."""
    one, two = await _portal(runtime.db), await _portal(runtime.db)
    raw = b"X-Big: " + b"a" * (pipeline.MAX_HEADER_BYTES + 10) + b"\r\n\r\nbody\r\n"
    how = pipeline.Arrival(Channel.SMTP, tuple(pipeline.Delivery(p) for p in (one, two, 999_999)))
    results = (await pipeline.log_message(runtime, raw, how)).each
    assert [type(r.error) for r in results if isinstance(r, pipeline.Refused)] == [
        MessageTooLarge] * 3
    for portal_id in (one, two):
        [entry] = await _entries(runtime.db, portal_id)
        assert (entry.reason_code, entry.source, entry.size) == ("too_large", "smtp", len(raw))
