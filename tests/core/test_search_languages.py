"""Stemming by each email's language: on PostgreSQL a word outside quotes also finds the
other forms of the word in an email of a known language; SQLite matches words and
their prefixes only (docs/search.md, "Languages")."""

from __future__ import annotations

import pytest
from sqlalchemy import text, update

from core.storage.db import Database
from core.storage.models import Email
from tests.core.test_search import _ids_of, _portal, _store


def _postgres(database: Database) -> bool:
    return not database.is_sqlite


async def test_a_word_finds_its_other_forms_in_the_emails_language(database: Database) -> None:
    """English "invoices" finds "invoice", German "Rechnungen" finds "Rechnung", French
    "factures" finds "facture", each in an email of that language, on PostgreSQL."""
    portal = await _portal(database)
    english = await _store(database, portal, subject="Your invoice",
                           body="The invoice is attached.", language="en")
    german = await _store(database, portal, subject="Ihre Rechnung",
                          body="Die Rechnung liegt bei.", language="de")
    french = await _store(database, portal, subject="Votre facture",
                          body="La facture est jointe.", language="fr")
    stemmed = _postgres(database)
    assert await _ids_of(database, portal, "invoices") == ([english] if stemmed else [])
    assert await _ids_of(database, portal, "Rechnungen") == ([german] if stemmed else [])
    assert await _ids_of(database, portal, "factures") == ([french] if stemmed else [])
    # The simple forms and their prefixes match on both backends, whatever the language.
    assert await _ids_of(database, portal, "invoice") == [english]
    assert await _ids_of(database, portal, "rechnung") == [german]


async def test_only_emails_of_a_known_language_are_stemmed(database: Database) -> None:
    """An email whose language is unknown matches words and prefixes only."""
    portal = await _portal(database)
    unknown = await _store(database, portal, subject="Invoice", body="An invoice.")
    english = await _store(database, portal, subject="Invoice", body="An invoice.",
                           language="en")
    japanese = await _store(database, portal, subject="Invoice", body="An invoice.",
                            language="ja")  # known, but PostgreSQL has no stemmer for it
    assert await _ids_of(database, portal, "invoices") == (
        [english] if _postgres(database) else [])
    assert sorted(await _ids_of(database, portal, "invoice")) == sorted(
        [unknown, english, japanese])


async def test_stems_with_fields_negation_and_quotes(database: Database) -> None:
    """subject: matches the subject's stems, -word leaves out the stemmed forms too, and
    a quoted word or a phrase matches its exact words only."""
    portal = await _portal(database)
    in_subject = await _store(database, portal, subject="Contract signed",
                              body="See the attachment.", language="en")
    in_body = await _store(database, portal, subject="Hello",
                           body="The contract was signed yesterday.", language="en")
    other = await _store(database, portal, subject="Hello", body="Lunch on Friday.",
                         language="en")
    if not _postgres(database):
        assert await _ids_of(database, portal, "contracts") == []
        return
    assert await _ids_of(database, portal, "subject:contracts") == [in_subject]
    assert await _ids_of(database, portal, "contracts") == [in_subject, in_body]
    assert await _ids_of(database, portal, "hello -contracts") == [other]
    assert await _ids_of(database, portal, '"contracts"') == []
    assert await _ids_of(database, portal, '"contracts signed"') == []
    # A stopword's stem is nothing: the word still matches as a word.
    assert sorted(await _ids_of(database, portal, "the signed")) == sorted(
        [in_subject, in_body])


async def test_each_word_matches_as_a_word_or_as_a_stem(database: Database) -> None:
    """Two words: one may match by prefix, the other by its stem."""
    portal = await _portal(database)
    found = await _store(database, portal, subject="Offer",
                         body="Rabattvereinbarung: the invoice follows.", language="en")
    if _postgres(database):
        assert await _ids_of(database, portal, "rabatt invoices") == [found]


async def test_a_change_of_language_restems_the_email(database: Database) -> None:
    """The stems follow the email's language when it changes (and its text)."""
    portal = await _portal(database)
    email = await _store(database, portal, subject="Rechnungen", body="", language="en")
    async with database.transaction() as session:
        await session.execute(update(Email).where(Email.id == email).values(language="de"))
    if _postgres(database):
        assert await _ids_of(database, portal, "Rechnung") == [email]  # a prefix, anyway
        assert await _ids_of(database, portal, "Rechnungs") == [email]  # German stem
        async with database.read() as session:
            stems = (await session.execute(text(
                "SELECT stems::text FROM search_documents WHERE email_id = :id"),
                {"id": email})).scalar_one()
        assert stems == "'rechnung':1A"


async def test_stems_of_another_portal_are_not_found(database: Database) -> None:
    """The stemmed index answers only the caller's portal, like the rest."""
    mine = await _portal(database, "Mine")
    theirs = await _portal(database, "Theirs")
    await _store(database, theirs, subject="Invoice", body="The invoice.", language="en")
    assert await _ids_of(database, mine, "invoices") == []
    assert await _ids_of(database, mine, "invoice") == []


@pytest.mark.parametrize("query", ["the", "und", "'", "a:b", "été", "Straße", "İstanbul"])
async def test_odd_words_are_stemmed_without_error(database: Database, query: str) -> None:
    """Stopwords, apostrophes, accents and dotted capitals go through every stemmer."""
    portal = await _portal(database)
    await _store(database, portal, subject="Straße İstanbul été", body="und the", language="de")
    await _ids_of(database, portal, query)
