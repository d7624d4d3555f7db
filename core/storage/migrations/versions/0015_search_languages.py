"""search: the language of each email, for stemming on PostgreSQL (issue 19)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 15:30:00

``emails.language``: the email's language (``core.mail.languages``: Content-Language,
else detected in the text), a lower-case primary subtag such as ``en``, or NULL when
unknown. Emails logged before this revision are unknown: their headers are not kept,
and detecting the language of a million stored texts is no work for a migration.

PostgreSQL: ``search_documents.stems``, the subject (weight A) and body (D) stemmed in
the email's language, for the languages PostgreSQL ships a Snowball stemmer for since
version 13 (text search configurations ``inboxlog_<language>``: the language's own
behind ``unaccent``), NULL for other and unknown languages; a partial GIN index over
the documents that have one. The trigger function of migration 0012 also writes it.
``inboxlog_search_stems(query)``: to_tsquery of a query in each of these languages, ORed
(NULL when it has no stem: a stopword).
Adding the column and its index rewrites nothing: existing rows have none.
SQLite: only the column on ``emails`` (FTS5 has no stemmer but Porter's English one;
docs/search.md).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0015'
down_revision: Union[str, Sequence[str], None] = '0014'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The languages with a Snowball stemmer in every PostgreSQL from 13 (14 added armenian,
# basque, catalan, hindi, serbian and yiddish), by primary subtag.
STEMMED = {
    "ar": "arabic", "da": "danish", "nl": "dutch", "en": "english", "fi": "finnish",
    "fr": "french", "de": "german", "el": "greek", "hu": "hungarian", "id": "indonesian",
    "ga": "irish", "it": "italian", "lt": "lithuanian", "ne": "nepali", "no": "norwegian",
    "nb": "norwegian", "nn": "norwegian", "pt": "portuguese", "ro": "romanian",
    "ru": "russian", "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish",
}


TO = '"to"'  # a keyword: quoted
_COLUMNS = f"subject, text, from_name, from_email, {TO}, cc"


def _vector(config: str, column: str, weight: str) -> str:
    # Split as migration 0012's document is split (addresses, file names: at @ . / _ + = :).
    return (f"setweight(to_tsvector({config}, translate({column}, '@./_+=:', '       ')),"
            f" '{weight}')")


def _email_changed(stems: bool) -> str:
    """Migration 0012's trigger function, writing the stems too when ``stems``."""
    def people(column: str) -> str:
        return (f"coalesce((SELECT string_agg(coalesce(p->>'name', '') || ' '"
                f" || coalesce(p->>'email', ''), ' ') FROM json_array_elements("
                f"CASE WHEN json_typeof(NEW.{column}) = 'array' THEN NEW.{column}"
                f" ELSE '[]'::json END) AS p), '')")
    columns = "email_id, portal_id, subject, body, sender, recipients, filenames"
    values = ("NEW.id, NEW.portal_id, coalesce(NEW.subject, ''), coalesce(NEW.text, ''),"
              " coalesce(NEW.from_name, '') || ' ' || coalesce(NEW.from_email, ''),"
              f" {people(TO)} || ' ' || {people('cc')},"
              " coalesce((SELECT string_agg(filename, ' ' ORDER BY id) FROM attachments"
              " WHERE email_id = NEW.id AND NOT inline), '')")
    updates = ("subject = EXCLUDED.subject, body = EXCLUDED.body, sender = EXCLUDED.sender,"
               " recipients = EXCLUDED.recipients")
    declare = ""
    if stems:
        columns += ", stems"
        values += (", CASE WHEN config IS NOT NULL THEN "
                   + _vector("config", "coalesce(NEW.subject, '')", "A") + " || "
                   + _vector("config", "coalesce(NEW.text, '')", "D") + " END")
        updates += ", stems = EXCLUDED.stems"
        declare = "DECLARE config regconfig := inboxlog_search_config(NEW.language);"
    return f"""
        CREATE OR REPLACE FUNCTION search_email_changed() RETURNS trigger LANGUAGE plpgsql
        AS $$ {declare}
        BEGIN
            INSERT INTO search_documents({columns}) VALUES ({values})
            ON CONFLICT (email_id) DO UPDATE SET {updates};
            RETURN NULL;
        END $$"""


def _trigger(columns: str) -> list[str]:
    return ["DROP TRIGGER search_emails_changed ON emails",
            f"""CREATE TRIGGER search_emails_changed AFTER INSERT OR UPDATE OF {columns}
                ON emails FOR EACH ROW EXECUTE FUNCTION search_email_changed()"""]




def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("emails", sa.Column("language", sa.String(16), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        return
    for name in sorted(set(STEMMED.values())):
        op.execute(sa.text(f"CREATE TEXT SEARCH CONFIGURATION inboxlog_{name}"
                           f" (COPY = pg_catalog.{name})"))
        op.execute(sa.text(f"ALTER TEXT SEARCH CONFIGURATION inboxlog_{name} ALTER MAPPING"
                           f" FOR hword, hword_part, word WITH unaccent, {name}_stem"))
    cases = " ".join(f"WHEN '{code}' THEN 'inboxlog_{name}'::regconfig"
                     for code, name in STEMMED.items())
    op.execute(sa.text(f"""
        CREATE FUNCTION inboxlog_search_config(language text) RETURNS regconfig
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE language {cases} END $$"""))
    # A query word's stems in every language (the query's language is not known), each
    # once: the planner's estimate of an OR of 22 copies of one stem is 22 times too high.
    stems = ", ".join(f"to_tsquery('inboxlog_{name}', query)::text"
                      for name in sorted(set(STEMMED.values())))
    op.execute(sa.text(f"""
        CREATE FUNCTION inboxlog_search_stems(query text) RETURNS tsquery
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        -- A stopword ("the") is no stem: to_tsquery says so in a NOTICE, each time.
        SET client_min_messages = warning AS $$
            SELECT string_agg(DISTINCT '(' || stem || ')', ' | ')::tsquery
            FROM unnest(ARRAY[{stems}]) AS stem WHERE stem <> '' $$"""))
    op.execute(sa.text("ALTER TABLE search_documents ADD COLUMN stems tsvector"))
    op.execute(sa.text("CREATE INDEX ix_search_documents_stems ON search_documents"
                       " USING gin (stems) WHERE stems IS NOT NULL"))
    op.execute(sa.text(_email_changed(stems=True)))
    for statement in _trigger(_COLUMNS + ", language"):
        op.execute(sa.text(statement))


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name != "sqlite":
        for statement in _trigger(_COLUMNS):
            op.execute(sa.text(statement))
        op.execute(sa.text(_email_changed(stems=False)))
        op.execute(sa.text("DROP INDEX ix_search_documents_stems"))
        op.execute(sa.text("ALTER TABLE search_documents DROP COLUMN stems"))
        op.execute(sa.text("DROP FUNCTION inboxlog_search_config(text)"))
        op.execute(sa.text("DROP FUNCTION inboxlog_search_stems(text)"))
        for name in sorted(set(STEMMED.values())):
            op.execute(sa.text(f"DROP TEXT SEARCH CONFIGURATION inboxlog_{name}"))
    op.drop_column("emails", "language")
