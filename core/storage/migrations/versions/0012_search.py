"""full-text search: one search document per logged email, indexed in the same transaction

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 12:30:00

``search_documents`` holds, per email, the text that is searched (subject, text, the
sender's and recipients' names and addresses, the file names of its attachments). Triggers
on ``emails`` and ``attachments`` keep it in step, so whatever writes those rows (the
pipeline, a deletion, an erasure, a retention purge) changes the index in its own
transaction, without knowing about search. ``core.search`` reads it (docs/search.md).

SQLite: two FTS5 tables over it as external content, kept in step by triggers on it:
``search_fts`` (unicode61, diacritics removed) for every document, ``search_cjk``
(trigram) for documents with Chinese, Japanese or Korean text, which unicode61 cannot
split into words.
PostgreSQL: a generated, weighted ``tsvector`` column with a GIN index, on a text search
configuration ``inboxlog_search`` (``simple`` behind ``unaccent``), and a pg_trgm index
on the text of documents with CJK text.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = "subject, body, sender, recipients, filenames"
TO = '"to"'  # a keyword: quoted
ALL = " || ".join(c.strip() for c in COLUMNS.split(","))

# Han, kana, Hangul: scripts written without spaces between words.
SQLITE_CJK = "'*[ぁ-ヿ㐀-䶿一-鿿가-힣豈-﫿]*'"
POSTGRES_CJK = "'[ぁ-ヿ㐀-䶿一-鿿가-힣豈-﫿]'"


def _sqlite_fields(row: str) -> dict[str, str]:
    """The search document's columns as SQLite expressions over an ``emails`` row."""
    def people(column: str) -> str:
        return (f"(SELECT coalesce(group_concat(coalesce(json_extract(value, '$.name'), '')"
                f" || ' ' || coalesce(json_extract(value, '$.email'), ''), ' '), '')"
                f" FROM json_each(CASE WHEN json_valid({row}.{column})"
                f" THEN {row}.{column} ELSE '[]' END))")
    return {
        "subject": f"coalesce({row}.subject, '')",
        "body": f"coalesce({row}.text, '')",
        "sender": f"coalesce({row}.from_name, '') || ' ' || coalesce({row}.from_email, '')",
        "recipients": f"{people(TO)} || ' ' || {people('cc')}",
    }


def _filenames(email_id: str) -> str:
    # Inline parts (logos, images in the body) are not what anyone calls an attachment.
    return (f"(SELECT coalesce(group_concat(filename, ' '), '') FROM attachments"
            f" WHERE email_id = {email_id} AND NOT inline)")


def _sqlite_upgrade() -> None:
    version = op.get_bind().exec_driver_sql("SELECT sqlite_version()").scalar_one()
    if tuple(int(part) for part in version.split(".")) < (3, 34):
        raise RuntimeError(f"search needs SQLite 3.34 or later, with FTS5 (for its trigram "
                           f"tokenizer); this Python's SQLite is {version}")
    op.execute(sa.text("""
        CREATE TABLE search_documents (
            email_id INTEGER PRIMARY KEY,
            portal_id INTEGER NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL DEFAULT '',
            sender TEXT NOT NULL DEFAULT '',
            recipients TEXT NOT NULL DEFAULT '',
            filenames TEXT NOT NULL DEFAULT '',
            -- Whether it has CJK text: computed once per write (the GLOB is the costly
            -- part of indexing), skipped for pure ASCII, whose bytes are its characters.
            cjk INTEGER GENERATED ALWAYS AS (CASE
                WHEN length(CAST({ALL} AS BLOB)) = length({ALL}) THEN 0
                ELSE ({ALL}) GLOB {SQLITE_CJK} END) STORED
        )""".replace("{ALL}", ALL).replace("{SQLITE_CJK}", SQLITE_CJK)))
    # The documents with CJK text, for the searches of a CJK word too short for trigrams.
    op.execute(sa.text("CREATE INDEX ix_search_documents_cjk ON search_documents (email_id)"
                       " WHERE cjk"))
    op.execute(sa.text(f"""
        CREATE VIRTUAL TABLE search_fts USING fts5({COLUMNS},
            content='search_documents', content_rowid='email_id',
            tokenize='unicode61 remove_diacritics 2')"""))
    op.execute(sa.text(f"""
        CREATE VIRTUAL TABLE search_cjk USING fts5({COLUMNS},
            content='search_documents', content_rowid='email_id', tokenize='trigram')"""))

    def values(row: str) -> str:
        return ", ".join(f"{row}.{c.strip()}" for c in COLUMNS.split(","))

    def has_cjk(row: str) -> str:
        return f"{row}.cjk"

    def index(row: str) -> str:
        return (f"INSERT INTO search_fts(rowid, {COLUMNS}) VALUES ({row}.email_id, {values(row)});"
                f" INSERT INTO search_cjk(rowid, {COLUMNS}) SELECT {row}.email_id, {values(row)}"
                f" WHERE {has_cjk(row)};")

    def unindex(row: str) -> str:
        return (f"INSERT INTO search_fts(search_fts, rowid, {COLUMNS})"
                f" VALUES ('delete', {row}.email_id, {values(row)});"
                f" INSERT INTO search_cjk(search_cjk, rowid, {COLUMNS})"
                f" SELECT 'delete', {row}.email_id, {values(row)} WHERE {has_cjk(row)};")

    op.execute(sa.text(f"CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents"
                       f" BEGIN {index('new')} END"))
    op.execute(sa.text(f"CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents"
                       f" BEGIN {unindex('old')} END"))
    op.execute(sa.text(f"CREATE TRIGGER search_documents_au AFTER UPDATE ON search_documents"
                       f" BEGIN {unindex('old')} {index('new')} END"))

    new = _sqlite_fields("new")
    op.execute(sa.text(f"""
        CREATE TRIGGER search_emails_ai AFTER INSERT ON emails BEGIN
            INSERT INTO search_documents(email_id, portal_id, subject, body, sender, recipients)
            VALUES (new.id, new.portal_id, {new['subject']}, {new['body']}, {new['sender']},
                    {new['recipients']});
        END"""))
    op.execute(sa.text(f"""
        CREATE TRIGGER search_emails_au AFTER UPDATE OF subject, text, from_name, from_email,
                "to", cc ON emails BEGIN
            UPDATE search_documents SET subject = {new['subject']}, body = {new['body']},
                sender = {new['sender']}, recipients = {new['recipients']}
            WHERE email_id = new.id;
        END"""))
    op.execute(sa.text("""
        CREATE TRIGGER search_emails_ad AFTER DELETE ON emails BEGIN
            DELETE FROM search_documents WHERE email_id = old.id;
        END"""))
    for event, row in (("INSERT", "new"), ("DELETE", "old"),
                       ("UPDATE OF filename, inline, email_id", "new")):
        name = event.split()[0].lower()
        op.execute(sa.text(f"""
            CREATE TRIGGER search_attachments_{name} AFTER {event} ON attachments BEGIN
                UPDATE search_documents SET filenames = {_filenames(f'{row}.email_id')}
                WHERE email_id = {row}.email_id;
            END"""))
    op.execute(sa.text("""
        CREATE TRIGGER search_attachments_moved AFTER UPDATE OF email_id ON attachments
        WHEN old.email_id != new.email_id BEGIN
            UPDATE search_documents SET filenames = """ + _filenames("old.email_id") + """
            WHERE email_id = old.email_id;
        END"""))

    # The emails logged before this revision.
    fields = _sqlite_fields("emails")
    op.execute(sa.text(f"""
        INSERT INTO search_documents(email_id, portal_id, {COLUMNS})
        SELECT id, portal_id, {fields['subject']}, {fields['body']}, {fields['sender']},
               {fields['recipients']}, {_filenames('emails.id')}
        FROM emails"""))


def _postgres_fields(row: str) -> dict[str, str]:
    def people(column: str) -> str:
        return (f"coalesce((SELECT string_agg(coalesce(p->>'name', '') || ' '"
                f" || coalesce(p->>'email', ''), ' ') FROM json_array_elements("
                f"CASE WHEN json_typeof({row}.{column}) = 'array' THEN {row}.{column}"
                f" ELSE '[]'::json END) AS p), '')")
    return {
        "subject": f"coalesce({row}.subject, '')",
        "body": f"coalesce({row}.text, '')",
        "sender": f"coalesce({row}.from_name, '') || ' ' || coalesce({row}.from_email, '')",
        "recipients": f"{people(TO)} || ' ' || {people('cc')}",
    }


def _pg_filenames(email_id: str) -> str:
    return (f"coalesce((SELECT string_agg(filename, ' ' ORDER BY id) FROM attachments"
            f" WHERE email_id = {email_id} AND NOT inline), '')")


def _vector(column: str, weight: str) -> str:
    # Addresses, host names and file names split into words as in SQLite's unicode61
    # (PostgreSQL's parser would keep "anna@example.com" one word): the same query finds
    # the same mail on both backends.
    return (f"setweight(to_tsvector('inboxlog_search', translate({column}, '@./_+=:',"
            f" '       ')), '{weight}')")


def _postgres_upgrade() -> None:
    op.execute(sa.text("CREATE EXTENSION IF NOT EXISTS unaccent"))
    op.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    op.execute(sa.text("CREATE TEXT SEARCH CONFIGURATION inboxlog_search (COPY = simple)"))
    op.execute(sa.text("ALTER TEXT SEARCH CONFIGURATION inboxlog_search"
                       " ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple"))
    document = " || ".join([_vector("subject", "A"), _vector("sender", "B"),
                            _vector("recipients", "C"), _vector("filenames", "D"),
                            _vector("body", "D")])
    op.execute(sa.text(f"""
        CREATE TABLE search_documents (
            email_id BIGINT PRIMARY KEY REFERENCES emails(id) ON DELETE CASCADE,
            portal_id BIGINT NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL DEFAULT '',
            sender TEXT NOT NULL DEFAULT '',
            recipients TEXT NOT NULL DEFAULT '',
            filenames TEXT NOT NULL DEFAULT '',
            document tsvector GENERATED ALWAYS AS ({document}) STORED,
            has_cjk boolean GENERATED ALWAYS AS (
                (subject || body || sender || recipients || filenames) ~ {POSTGRES_CJK}) STORED
        )"""))
    op.execute(sa.text("CREATE INDEX ix_search_documents_document ON search_documents"
                       " USING gin (document)"))
    op.execute(sa.text("CREATE INDEX ix_search_documents_cjk ON search_documents USING gin"
                       " ((subject || ' ' || body || ' ' || sender || ' ' || recipients || ' '"
                       " || filenames) gin_trgm_ops) WHERE has_cjk"))
    new = _postgres_fields("NEW")
    op.execute(sa.text(f"""
        CREATE FUNCTION search_email_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO search_documents(email_id, portal_id, subject, body, sender,
                                         recipients, filenames)
            VALUES (NEW.id, NEW.portal_id, {new['subject']}, {new['body']}, {new['sender']},
                    {new['recipients']}, {_pg_filenames('NEW.id')})
            ON CONFLICT (email_id) DO UPDATE SET subject = EXCLUDED.subject,
                body = EXCLUDED.body, sender = EXCLUDED.sender,
                recipients = EXCLUDED.recipients;
            RETURN NULL;
        END $$"""))
    op.execute(sa.text("""
        CREATE TRIGGER search_emails_changed AFTER INSERT OR UPDATE OF subject, text,
            from_name, from_email, "to", cc ON emails
        FOR EACH ROW EXECUTE FUNCTION search_email_changed()"""))
    op.execute(sa.text(f"""
        CREATE FUNCTION search_attachments_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                UPDATE search_documents SET filenames = {_pg_filenames('OLD.email_id')}
                WHERE email_id = OLD.email_id;
            END IF;
            IF TG_OP IN ('UPDATE', 'INSERT') THEN
                UPDATE search_documents SET filenames = {_pg_filenames('NEW.email_id')}
                WHERE email_id = NEW.email_id;
            END IF;
            RETURN NULL;
        END $$"""))
    op.execute(sa.text("""
        CREATE TRIGGER search_attachments_changed AFTER INSERT OR DELETE OR UPDATE OF
            filename, inline, email_id ON attachments
        FOR EACH ROW EXECUTE FUNCTION search_attachments_changed()"""))

    row = _postgres_fields("emails")
    op.execute(sa.text(f"""
        INSERT INTO search_documents(email_id, portal_id, subject, body, sender, recipients,
                                     filenames)
        SELECT id, portal_id, {row['subject']}, {row['body']}, {row['sender']},
               {row['recipients']}, {_pg_filenames('emails.id')}
        FROM emails"""))


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
    else:
        _postgres_upgrade()


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("search_attachments_moved", "search_attachments_update",
                        "search_attachments_delete", "search_attachments_insert",
                        "search_emails_ad", "search_emails_au", "search_emails_ai",
                        "search_documents_au", "search_documents_ad", "search_documents_ai"):
            op.execute(sa.text(f"DROP TRIGGER {trigger}"))
        op.execute(sa.text("DROP TABLE search_cjk"))
        op.execute(sa.text("DROP TABLE search_fts"))
        op.execute(sa.text("DROP TABLE search_documents"))
    else:
        op.execute(sa.text("DROP TRIGGER search_attachments_changed ON attachments"))
        op.execute(sa.text("DROP TRIGGER search_emails_changed ON emails"))
        op.execute(sa.text("DROP FUNCTION search_attachments_changed()"))
        op.execute(sa.text("DROP FUNCTION search_email_changed()"))
        op.execute(sa.text("DROP TABLE search_documents"))
        op.execute(sa.text("DROP TEXT SEARCH CONFIGURATION inboxlog_search"))
        # The extensions stay: other objects of the database may use them.
