"""core.search against real storage, on SQLite (FTS5) and on PostgreSQL (tsvector): the
index follows every write of emails and attachments in the same transaction, and a
search finds the same emails in the same order on both."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import insert, select, text, update

from core import accounts, search
from core.errors import InvalidInput
from core.retention import delete_emails
from core.search import Filters
from core.storage.db import Database, migrate
from core.storage.models import (
    Attachment,
    Company,
    Contact,
    Email,
    EmailCompany,
    EmailContact,
    EmailSource,
    Thread,
)
from core.types import Direction, Source
from tests.support.migrations import downgrade_to, upgrade_to

_ids = count(1)
DAY = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)


async def _portal(db: Database, name: str = "Search") -> int:
    async with db.transaction() as session:
        return (await accounts.create_portal(session, name)).portal.id


def _email(portal_id: int, thread_id: int, *, subject: str = "", body: str = "",
           sender: tuple[str, str] = ("Rita Rep", "rep@ourco.example"),
           to: tuple[tuple[str, str], ...] = (("Ann Acme", "ann@acme.example"),),
           cc: tuple[tuple[str, str], ...] = (), files: tuple[str, ...] = (),
           direction: str = "outgoing", source: str = "bcc",
           sent_at: datetime = DAY, language: str | None = None) -> Email:
    email = Email(
        portal_id=portal_id, message_id=f"<{next(_ids)}@search.test>", thread_id=thread_id,
        thread_reason="new", direction=direction, from_name=sender[0], from_email=sender[1],
        to=[{"name": n, "email": a} for n, a in to], cc=[{"name": n, "email": a} for n, a in cc],
        subject=subject, text=body, sent_at=sent_at, language=language)
    email.sources = [EmailSource(source=source)]
    email.attachments = [Attachment(filename=f, content_type="application/pdf", size=1,
                                    sha256="0" * 64, blob_sha256=None) for f in files]
    return email


async def _store(db: Database, portal_id: int, **fields: object) -> int:
    """One email written as the pipeline writes it: rows, in one transaction."""
    async with db.transaction() as session:
        thread = Thread(portal_id=portal_id, subject=str(fields.get("subject", "")))
        session.add(thread)
        await session.flush()
        email = _email(portal_id, thread.id, **fields)  # type: ignore[arg-type]
        session.add(email)
        await session.flush()
        return email.id


async def _ids_of(db: Database, portal_id: int, query: str,
                  filters: Filters | None = None) -> list[int]:
    async with db.read() as session:
        page = await search.search(session, portal_id, query, filters, limit=100)
        return [hit.email.id for hit in page.hits]


async def test_words_phrases_and_negation(database: Database) -> None:
    """Every word must match; a phrase in order; -word and -"phrase" exclude."""
    portal = await _portal(database)
    agreed = await _store(database, portal, subject="Offer", body="We agreed to the discount.")
    other = await _store(database, portal, subject="Offer", body="The discount was not agreed.")
    await _store(database, portal, subject="Lunch", body="Pizza on Friday")
    assert sorted(await _ids_of(database, portal, "discount agreed")) == sorted([agreed, other])
    assert await _ids_of(database, portal, '"agreed to the discount"') == [agreed]
    assert await _ids_of(database, portal, "discount -pizza -\"not agreed\"") == [agreed]
    assert await _ids_of(database, portal, "-discount -offer") != []
    assert await _ids_of(database, portal, "nothinglikethis") == []


async def test_ranking_prefers_the_subject(database: Database) -> None:
    """The word in the subject ranks above the same word once in a long body."""
    portal = await _portal(database)
    in_body = await _store(database, portal, subject="Hello",
                           body="Some words about many things, and a quote, in passing.")
    in_subject = await _store(database, portal, subject="Quote for Acme", body="See below.")
    assert await _ids_of(database, portal, "quote") == [in_subject, in_body]


async def test_fields(database: Database) -> None:
    """from:, to: (To and Cc) and subject: look only in their field; names and addresses."""
    portal = await _portal(database)
    from_anna = await _store(database, portal, subject="Plan",
                             sender=("Anna Schmidt", "anna@kunde.example"), direction="incoming")
    to_anna = await _store(database, portal, subject="Re: Plan", body="Anna, see you",
                           cc=(("Anna Schmidt", "anna@kunde.example"),))
    assert await _ids_of(database, portal, "from:anna") == [from_anna]
    assert await _ids_of(database, portal, "from:anna@kunde.example") == [from_anna]
    assert await _ids_of(database, portal, 'from:"anna schmidt"') == [from_anna]
    assert await _ids_of(database, portal, "to:anna@kunde.example") == [to_anna]
    assert sorted(await _ids_of(database, portal, "to:ann@acme.example")) == sorted(
        [to_anna, from_anna])
    assert await _ids_of(database, portal, "subject:re") == [to_anna]
    assert await _ids_of(database, portal, "kunde") != []
    assert await _ids_of(database, portal, "-from:anna subject:plan") == [to_anna]


async def test_attachments(database: Database) -> None:
    """File names are searched; has:attachment and the filter count non-inline files."""
    portal = await _portal(database)
    with_file = await _store(database, portal, subject="Files", files=("Angebot_2026.pdf",))
    without = await _store(database, portal, subject="Files")
    assert await _ids_of(database, portal, "angebot") == [with_file]
    assert await _ids_of(database, portal, "files has:attachment") == [with_file]
    assert await _ids_of(database, portal, "files -has:attachment") == [without]
    assert await _ids_of(database, portal, "files", Filters(has_attachment=True)) == [with_file]
    async with database.transaction() as session:
        session.add(Attachment(email_id=without, filename="logo.png", content_type="image/png",
                               size=1, sha256="1" * 64, inline=True))
    assert await _ids_of(database, portal, "logo") == []
    assert await _ids_of(database, portal, "files has:attachment") == [with_file]


async def test_accents_compounds_and_cjk(database: Database) -> None:
    """Accents are ignored, a word finds the compounds it begins, CJK text anywhere."""
    portal = await _portal(database)
    german = await _store(database, portal, subject="Rabattvereinbarung",
                          body="Sehr geehrte Frau Müller, anbei der Vertragsentwurf.")
    japanese = await _store(database, portal, subject="会議の議事録",
                            body="明日の会議について、資料を送ります。")
    korean = await _store(database, portal, subject="회의", body="한국어 메일입니다")
    assert await _ids_of(database, portal, "muller") == [german]
    assert await _ids_of(database, portal, "MÜLLER") == [german]
    assert await _ids_of(database, portal, "rabatt vertrag") == [german]
    assert await _ids_of(database, portal, "議事録") == [japanese]  # three characters
    assert await _ids_of(database, portal, "会議") == [japanese]  # two
    assert await _ids_of(database, portal, "資料を送") == [japanese]
    assert await _ids_of(database, portal, "subject:議事録") == [japanese]
    assert await _ids_of(database, portal, "subject:資料") == []
    assert await _ids_of(database, portal, "국어") == [korean]
    assert await _ids_of(database, portal, "会議 -議事録") == []


async def test_filters(database: Database) -> None:
    """Contact, company, direction, source and dates narrow a search; all apply together."""
    portal = await _portal(database)
    old = await _store(database, portal, subject="Report", sent_at=DAY - timedelta(days=40))
    new = await _store(database, portal, subject="Report", direction="incoming",
                       source="forward")
    async with database.transaction() as session:
        company = Company(portal_id=portal, domain="acme.example", name="Acme")
        session.add(company)
        await session.flush()
        contact = Contact(portal_id=portal, email="ann@acme.example", company_id=company.id)
        session.add(contact)
        await session.flush()
        session.add_all([EmailContact(email_id=new, contact_id=contact.id),
                         EmailCompany(email_id=new, company_id=company.id)])
        contact_id, company_id = contact.id, company.id
    assert await _ids_of(database, portal, "report") == [new, old]  # same rank: newest first
    assert await _ids_of(database, portal, "report", Filters(contact_id=contact_id)) == [new]
    assert await _ids_of(database, portal, "report", Filters(company_id=company_id)) == [new]
    assert await _ids_of(database, portal, "report",
                         Filters(direction=Direction.OUTGOING)) == [old]
    assert await _ids_of(database, portal, "report", Filters(source=Source.FORWARD)) == [new]
    assert await _ids_of(database, portal, "report", Filters(before=DAY - timedelta(days=1))) \
        == [old]
    assert await _ids_of(database, portal, "report", Filters(after=DAY)) == [new]
    assert await _ids_of(database, portal, "report after:2026-11-16") == [new]
    assert await _ids_of(database, portal, "report before:2026-11-16") == [old]
    assert await _ids_of(database, portal, "after:2026-11-01") == [new]  # operators only
    assert await _ids_of(database, portal, "report", Filters(
        direction=Direction.INCOMING, source=Source.BCC)) == []


async def test_portals_are_apart(database: Database) -> None:
    """A portal's search never returns another portal's email."""
    mine, theirs = await _portal(database, "A"), await _portal(database, "B")
    own = await _store(database, mine, subject="Secret merger")
    await _store(database, theirs, subject="Secret merger")
    assert await _ids_of(database, mine, "secret merger") == [own]
    assert await _ids_of(database, mine, "-nothing") == [own]


async def test_deleted_emails_drop_out_and_come_back(database: Database) -> None:
    """A deleted email is not found at once; restored, it is found again."""
    portal = await _portal(database)
    email_id = await _store(database, portal, subject="Contract draft")
    async with database.transaction() as session:
        await session.execute(update(Email).where(Email.id == email_id)
                              .values(deleted_at=datetime.now(UTC)))
    assert await _ids_of(database, portal, "contract") == []
    async with database.transaction() as session:
        await session.execute(update(Email).where(Email.id == email_id).values(deleted_at=None))
    assert await _ids_of(database, portal, "contract") == [email_id]


async def _documents(db: Database, email_id: int) -> int:
    async with db.read() as session:
        return int((await session.execute(text(
            "SELECT count(*) FROM search_documents WHERE email_id = :id"),
            {"id": email_id})).scalar_one())


async def test_removed_emails_leave_the_index(database: Database) -> None:
    """Emails removed for good (erasure, purge: retention.delete_emails) leave no row and
    no index entry behind, in the transaction that removed them."""
    portal = await _portal(database)
    email_id = await _store(database, portal, subject="Gone tomorrow", files=("gone.pdf",))
    assert await _documents(database, email_id) == 1
    async with database.transaction() as session:
        await delete_emails(session, [email_id])
        assert (await session.execute(text(
            "SELECT count(*) FROM search_documents WHERE email_id = :id"),
            {"id": email_id})).scalar_one() == 0
    assert await _documents(database, email_id) == 0
    assert await _ids_of(database, portal, "gone") == []
    if database.is_sqlite:  # the FTS5 index itself, not only its content table
        async with database.read() as session:
            rows = await session.execute(text(
                "SELECT rowid FROM search_fts WHERE search_fts MATCH 'gone'"))
            assert rows.all() == []


async def test_rolled_back_writes_leave_nothing(database: Database) -> None:
    """An email whose transaction rolls back (a refused or failed ingest) is not indexed."""
    portal = await _portal(database)
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            thread = Thread(portal_id=portal, subject="x")
            session.add(thread)
            await session.flush()
            session.add(_email(portal, thread.id, subject="Never logged"))
            await session.flush()
            raise RuntimeError("refused")
    assert await _ids_of(database, portal, "never logged") == []


async def test_edits_follow(database: Database) -> None:
    """A changed subject or text, or a removed attachment, changes what is found."""
    portal = await _portal(database)
    email_id = await _store(database, portal, subject="Draft", body="first version",
                            files=("plan.pdf",))
    async with database.transaction() as session:
        await session.execute(update(Email).where(Email.id == email_id)
                              .values(subject="Final", text="second version"))
        found = (await session.scalars(select(Attachment).where(
            Attachment.email_id == email_id))).one()
        await session.delete(found)
    assert await _ids_of(database, portal, "draft") == []
    assert await _ids_of(database, portal, "first") == []
    assert await _ids_of(database, portal, "final second") == [email_id]
    assert await _ids_of(database, portal, "plan") == []


async def test_pages(database: Database) -> None:
    """The cursor walks every hit once, best first; a forged cursor is refused."""
    portal = await _portal(database)
    stored = [await _store(database, portal, subject="Weekly update",
                           sent_at=DAY - timedelta(days=i)) for i in range(5)]
    stored.append(await _store(database, portal, subject="Update update update"))
    seen: list[int] = []
    cursor = None
    async with database.read() as session:
        for _ in range(4):
            page = await search.search(session, portal, "update", limit=2, cursor=cursor)
            seen += [h.email.id for h in page.hits]
            cursor = page.cursor
            if cursor is None:
                break
        assert cursor is None
        assert sorted(seen) == sorted(stored)
        assert seen[0] == stored[-1]  # the subject with the word three times
        assert seen[1:] == stored[:5]  # the same rank: newest first
        with pytest.raises(InvalidInput):
            await search.search(session, portal, "update", cursor="not-a-cursor")
        with pytest.raises(InvalidInput):
            await search.search(session, portal, "update", limit=101)


async def test_snippets(database: Database) -> None:
    """A hit carries the piece of text around the words and the subject's highlights."""
    portal = await _portal(database)
    await _store(database, portal, subject="Discount for Acme",
                 body="Hi Ann,\n\nas discussed we agreed to the discount of 10%.\n\nRita")
    async with database.read() as session:
        page = await search.search(session, portal, "discount agreed")
    hit = page.hits[0]
    assert hit.snippet.field == "text"
    assert [hit.snippet.text[s:e] for s, e in hit.snippet.highlights] == ["agreed", "discount"]
    assert [hit.email.subject[s:e] for s, e in hit.subject_highlights] == ["Discount"]


async def test_emails_before_the_index_are_indexed(unmigrated: Database) -> None:
    """Migration 0012 indexes the emails already logged, with their attachments."""
    await upgrade_to(unmigrated, "0011")
    async with unmigrated.transaction() as session:
        # Rows as revision 0011 had them: the models (and accounts.create_portal, which
        # writes an admin token) describe the newest revision.
        portal = (await session.execute(text(
            "INSERT INTO portals (name, bcc_token, log_attachments, auto_create_contacts,"
            " never_log, created_at, sender_auth) VALUES ('Old', 'old-bcc', true, true, '[]',"
            " :day, 'off') RETURNING id"), {"day": DAY})).scalar_one()
        thread = Thread(portal_id=portal, subject="Old")
        session.add(thread)
        await session.flush()
        await session.execute(insert(Email).values(
            portal_id=portal, message_id="<old@search.test>", synthetic_message_id=False,
            thread_id=thread.id, thread_reason="new", direction="outgoing",
            from_email="rep@ourco.example", from_name="Rita", subject="Historic offer",
            text="from last year", reply_text="", html="", size=0, to=[{"name": "Zoe",
            "email": "zoe@old.example"}], cc=[], parse_notes=[], sent_at=DAY, created_at=DAY))
        email_id = (await session.scalars(select(Email.id))).one()
        await session.execute(insert(Attachment).values(
            email_id=email_id, filename="pricelist.xlsx", content_type="x", size=1,
            sha256="2" * 64, inline=False))
    await migrate(unmigrated)
    for query in ("historic", "zoe", "to:old.example", "pricelist"):
        assert await _ids_of(unmigrated, portal, query) == [email_id], query


async def test_any_text_is_a_query_or_a_clear_refusal(database: Database) -> None:
    """Whatever the search box holds (quotes, operators, FTS and tsquery syntax, NUL,
    accents, CJK, emoji), the answer is a page or InvalidInput, never a database error."""
    portal = await _portal(database)
    await _store(database, portal, subject="Ünïcödé 会議 test", body="a-b c:d \"e\" f*")
    pieces = ['"', "-", ":", "*", "(", ")", "^", "'", "\\", "\x00", "%", "_", "NEAR", "AND",
              "OR", "NOT", "from:", "to:", "subject:", "has:", "before:", "é", "e\u0301",
              "²", "会議", "議事録", "😀", "ﬁ", "ß", "İ", "\u200b", "<->", "!", "&", "|",
              " ", "  ", "abc", "x1", "{subject}", "subject : x", "col:", "*a"]
    rng = random.Random(19)
    async with database.read() as session:
        for _ in range(300):
            query = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
            with contextlib.suppress(InvalidInput):
                await search.search(session, portal, query, limit=5)


async def test_downgrade_and_upgrade_again(database: Database) -> None:
    """0012 downgrades cleanly (no search_* object left) and upgrades again."""
    await downgrade_to(database, "0011")
    listing = ("SELECT name FROM sqlite_master WHERE name LIKE 'search%'" if database.is_sqlite
               else "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'search%' UNION ALL "
                    "SELECT relname FROM pg_class WHERE relname LIKE 'search%'")
    async with database.read() as session:
        assert (await session.execute(text(listing))).all() == []
    await migrate(database)
    portal = await _portal(database)
    email_id = await _store(database, portal, subject="Back again")
    assert await _ids_of(database, portal, "back") == [email_id]


async def test_cjk_only_in_a_file_name(database: Database) -> None:
    """CJK text that arrives with an attachment, after its email, is found too; text with
    accents but no CJK is not taken for CJK."""
    portal = await _portal(database)
    email_id = await _store(database, portal, subject="Angebot für Müller",
                            files=("見積書.pdf",))
    assert await _ids_of(database, portal, "見積書") == [email_id]
    assert await _ids_of(database, portal, "見積") == [email_id]
    async with database.read() as session:
        cjk = (await session.execute(text(
            "SELECT count(*) FROM search_documents WHERE portal_id = :p AND "
            + ("cjk" if database.is_sqlite else "has_cjk")), {"p": portal})).scalar_one()
    assert cjk == 1
    german = await _store(database, portal, subject="Grüße aus Köln")
    async with database.read() as session:
        flagged = (await session.execute(text(
            "SELECT email_id FROM search_documents WHERE portal_id = :p AND "
            + ("cjk" if database.is_sqlite else "has_cjk")), {"p": portal})).scalars().all()
    assert german not in flagged
