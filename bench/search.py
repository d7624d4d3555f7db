"""Full-text search latency with 1,000,000 emails stored, and the ingest cost of the index.

Search: one portal holds every email (the worst case: every match is the caller's and
is ranked). The emails are generated text (a Zipf-distributed vocabulary of 20,000
words, bodies of 30 to 150 words, one in ten with an attachment, one in a hundred in
Japanese; the others' language English, so PostgreSQL stems them) loaded with bulk
inserts, through the index triggers, then ``core.search``
answers a mix of queries (a rare word, a mid-frequency word, two words, a phrase,
``from:``, a filter with ``has:attachment`` and ``after:``, a CJK word and one of the
ten most frequent words), first page of 20 with snippets. Figures: p50 and p99 over the
mix, against the same database's look-up of one email by Message-ID.

Ingest: the same small BCC'd messages through the pipeline (``core.pipeline.ingest`` in
a transaction, one at a time, on an otherwise empty database), in alternating blocks
with the index triggers in place and dropped; the figure is the median per message. As
that is mostly parsing and the commit's fsync, also the rows alone: blocks of 2,000
emails written in bulk with and without the triggers, the median per email.

``INBOXLOG_BENCH_SEARCH_EMAILS`` (default 1,000,000) sets the size; the load stops at
10,000, 100,000 and 300,000 emails to measure on the way, so a run cut short still says
something (``var/bench-search.json`` keeps each step's figures as they come;
``python -m bench.search --doc`` writes the section of docs/benchmarks.md from it).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import Row, drop_pg_database, new_pg_database, percentile, pg_available

EMAILS = int(os.environ.get("INBOXLOG_BENCH_SEARCH_EMAILS", "1000000"))
STEPS = [n for n in (10_000, 100_000, 300_000) if n < EMAILS] + [EMAILS]
QUERIES_PER_KIND = 25
INGEST_BLOCKS, INGEST_BLOCK = 6, 40
# Each step's figures as they come (a run cut short still leaves them), and what the
# "Search" section of docs/benchmarks.md is written from.
PROGRESS = Path(__file__).resolve().parents[1] / "var" / "bench-search.json"
USER = "rep@ourco.example"
START = datetime(2024, 1, 1, tzinfo=UTC)
_BATCH = 5_000
_SYLLABLES = ["ka", "ro", "mi", "ten", "sa", "lu", "ver", "an", "do", "pel", "ri", "gus",
              "mo", "tar", "li", "ne", "bo", "sch", "ei", "ul", "za", "fen", "or", "wi"]
_FIRST = ["Anna", "Ben", "Chloé", "David", "Eva", "Farid", "Greta", "Hiro", "Ines", "Jonas",
          "Kemal", "Lena", "Marek", "Nina", "Omar", "Paula", "Quentin", "Rosa", "Sven", "Tamar"]
_LAST = ["Müller", "Schmidt", "Dubois", "Rossi", "García", "Novak", "Jansen", "Kowalski",
         "Tanaka", "Okafor", "Silva", "Larsen", "Nguyen", "Haddad", "Weber", "Costa"]
_JAPANESE = ["明日の会議について資料を送ります", "見積書をご確認ください", "議事録を共有します",
             "契約書の修正版です", "納期について相談させてください"]


class Corpus:
    """Deterministic generated mail: words, people, bodies."""

    def __init__(self, seed: int = 19) -> None:
        self.random = random.Random(seed)
        words: set[str] = set()
        while len(words) < 20_000:
            words.add("".join(self.random.choices(_SYLLABLES, k=self.random.randint(2, 4))))
        self.words = sorted(words)
        self.random.shuffle(self.words)
        self.weights = [1 / (rank + 1) for rank in range(len(self.words))]
        self.cumulative = list(_accumulate(self.weights))

    def text(self, k: int) -> str:
        return " ".join(self.random.choices(self.words, cum_weights=self.cumulative, k=k))

    def person(self) -> tuple[str, str]:
        first, last = self.random.choice(_FIRST), self.random.choice(_LAST)
        domain = self.random.choice(self.words[1000:3000])
        return f"{first} {last}", f"{first.lower()}.{self.random.randint(1, 999)}@{domain}.example"


def _accumulate(values: list[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def _rows(corpus: Corpus, start: int, stop: int, portal: int, user: int
          ) -> Iterator[tuple[dict[str, Any], str | None]]:
    """(an emails row, the file name of its attachment or None) for ids start..stop-1."""
    r = corpus.random
    for i in range(start, stop):
        name, address = corpus.person()
        outgoing = i % 2 == 0
        body = corpus.text(r.randint(30, 150))
        if i % 100 == 7:
            body = r.choice(_JAPANESE) + "。" + body
        people = [{"name": name, "email": address}]
        yield ({
            "id": i + 1, "portal_id": portal, "message_id": f"<bulk-{i}@bench.example>",
            "thread_id": i // 4 + 1,
            "direction": "outgoing" if outgoing else "incoming", "user_id": user,
            "from_email": USER if outgoing else address,
            "from_name": "Rita Rep" if outgoing else name,
            "to": json.dumps(people if outgoing else [{"name": "Rita Rep", "email": USER}]),
            "subject": corpus.text(r.randint(2, 7)).capitalize(),
            "sent_at": START + timedelta(minutes=i), "text": body,
            # Stemmed as English (PostgreSQL: search_documents.stems), as most mail
            # is of a known language; the Japanese ones have no stemmer.
            "language": "ja" if i % 100 == 7 else "en",
        }, f"{corpus.text(1)}-{i}.pdf" if i % 10 == 3 else None)


_EMAIL_COLUMNS = ("id, portal_id, message_id, synthetic_message_id, thread_id, thread_reason, "
                  "direction, user_id, from_email, from_name, \"to\", cc, subject, sent_at, "
                  "text, reply_text, html, size, parse_notes, created_at, language")


def load_sqlite(path: Path, corpus: Corpus, start: int, stop: int, portal: int,
                user: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        for low in range(start, stop, _BATCH):
            high = min(stop, low + _BATCH)
            rows = list(_rows(corpus, low, high, portal, user))
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT OR IGNORE INTO threads (id, portal_id, subject, created_at)"
                " VALUES (?, ?, '', '2025-01-01 00:00:00.000000')",
                [(t, portal) for t in sorted({row["thread_id"] for row, _ in rows})])
            conn.executemany(
                f"INSERT INTO emails ({_EMAIL_COLUMNS}) VALUES (?, ?, ?, 0, ?, 'new', ?, ?, ?,"
                f" ?, ?, '[]', ?, ?, ?, '', '', 2048, '[]', '2025-01-01 00:00:00.000000', ?)",
                [(row["id"], portal, row["message_id"], row["thread_id"], row["direction"],
                  row["user_id"], row["from_email"], row["from_name"], row["to"],
                  row["subject"], row["sent_at"].strftime("%Y-%m-%d %H:%M:%S.000000"),
                  row["text"], row["language"]) for row, _ in rows])
            conn.executemany(
                "INSERT INTO email_sources (email_id, source, created_at)"
                " VALUES (?, 'bcc', '2025-01-01 00:00:00.000000')",
                [(row["id"],) for row, _ in rows])
            conn.executemany(
                "INSERT INTO attachments (email_id, filename, content_type, size, sha256,"
                " inline) VALUES (?, ?, 'application/pdf', 1000, ?, 0)",
                [(row["id"], file, "0" * 64) for row, file in rows if file])
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def load_postgres(url: str, corpus: Corpus, start: int, stop: int, portal: int,
                        user: int, *, analyze: bool = True) -> None:
    conn = await asyncpg.connect(_pg_dsn(url))
    try:
        for low in range(start, stop, _BATCH):
            high = min(stop, low + _BATCH)
            rows = list(_rows(corpus, low, high, portal, user))
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO threads (id, portal_id, subject, created_at)"
                    " VALUES ($1, $2, '', now()) ON CONFLICT DO NOTHING",
                    [(t, portal) for t in sorted({row["thread_id"] for row, _ in rows})])
                await conn.executemany(
                    f"INSERT INTO emails ({_EMAIL_COLUMNS}) VALUES ($1, $2, $3, false, $4,"
                    f" 'new', $5, $6, $7, $8, $9::json, '[]'::json, $10, $11, $12, '', '',"
                    f" 2048, '[]'::json, now(), $13)",
                    [(row["id"], portal, row["message_id"], row["thread_id"], row["direction"],
                      row["user_id"], row["from_email"], row["from_name"], row["to"],
                      row["subject"], row["sent_at"], row["text"], row["language"])
                     for row, _ in rows])
                await conn.executemany(
                    "INSERT INTO email_sources (email_id, source, created_at)"
                    " VALUES ($1, 'bcc', now())", [(row["id"],) for row, _ in rows])
                await conn.executemany(
                    "INSERT INTO attachments (email_id, filename, content_type, size, sha256,"
                    " inline) VALUES ($1, $2, 'application/pdf', 1000, $3, false)",
                    [(row["id"], file, "0" * 64) for row, file in rows if file])
        for table in ("threads", "emails", "attachments"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                               f" (SELECT max(id) FROM {table}))")
        if analyze:
            await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def queries(corpus: Corpus) -> list[tuple[str, str]]:
    """(kind, query) pairs: QUERIES_PER_KIND of each kind, drawn from the corpus."""
    r = random.Random(7)
    words = corpus.words
    found: list[tuple[str, str]] = []
    for _ in range(QUERIES_PER_KIND):
        found += [
            ("rare word", r.choice(words[10_000:20_000])),
            ("mid-frequency word", r.choice(words[200:1_000])),
            ("two words", f"{r.choice(words[50:500])} {r.choice(words[500:5_000])}"),
            ("phrase", f'"{r.choice(words[:50])} {r.choice(words[:50])}"'),
            ("from:", f"from:{r.choice(_LAST)}"),
            ("filter", f"{r.choice(words[100:1_000])} has:attachment after:2024-06-01"),
            ("CJK", r.choice(["会議", "見積書", "議事録", "契約書", "納期"])),
            ("frequent word", r.choice(words[:10])),
        ]
    return found


async def _measure_search(db_url: str, portal: int, corpus: Corpus) -> dict[str, Any]:
    from core import queries as core_queries
    from core import search
    from core.storage.db import Database

    db = Database(db_url)
    try:
        latencies: dict[str, list[float]] = {}
        hits = 0
        for kind, query in queries(corpus):
            started = time.perf_counter()
            async with db.read() as session:
                page = await search.search(session, portal, query)
            latencies.setdefault(kind, []).append(time.perf_counter() - started)
            hits += len(page.hits)
        lookups = []
        r = random.Random(3)
        count = await _count(db)
        for _ in range(100):
            started = time.perf_counter()
            async with db.read() as session:
                await core_queries.emails_by_message_id(
                    session, portal, f"<bulk-{r.randrange(count)}@bench.example>")
            lookups.append(time.perf_counter() - started)
        every = [s for values in latencies.values() for s in values]
        return {"p50": percentile(every, 50), "p99": percentile(every, 99),
                "kinds": {k: [percentile(v, 50), percentile(v, 99)]
                          for k, v in latencies.items()},
                "lookup_p50": percentile(lookups, 50), "lookup_p99": percentile(lookups, 99),
                "hits": hits, "emails": count}
    finally:
        await db.dispose()


async def _count(db: Any) -> int:
    from sqlalchemy import func, select

    from core.storage.models import Email

    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Email)) or 0)


async def _setup(db_url: str) -> tuple[int, int]:
    from core import accounts
    from core.storage.db import Database, migrate

    db = Database(db_url)
    try:
        await migrate(db)
        async with db.transaction() as session:
            portal = await accounts.create_portal(session, "Search bench")
            user = await accounts.add_user(session, portal.portal.id, USER, name="Rita Rep")
            return portal.portal.id, user.user.id
    finally:
        await db.dispose()


def _progress(key: str, value: Any) -> None:
    found = json.loads(PROGRESS.read_text()) if PROGRESS.exists() else {}
    found[key] = value
    PROGRESS.parent.mkdir(exist_ok=True)
    PROGRESS.write_text(json.dumps(found, indent=1) + "\n")


def _search_backend(backend: str, db_url: str, sqlite_path: Path | None) -> list[dict[str, Any]]:
    corpus = Corpus()
    portal, user = asyncio.run(_setup(db_url))
    results = []
    loaded = 0
    for step in STEPS:
        started = time.perf_counter()
        if sqlite_path is not None:
            load_sqlite(sqlite_path, corpus, loaded, step, portal, user)
        else:
            asyncio.run(load_postgres(db_url, corpus, loaded, step, portal, user))
        load_seconds = time.perf_counter() - started
        loaded = step
        figures = asyncio.run(_measure_search(db_url, portal, corpus))
        figures["load_seconds"] = load_seconds
        print(f"  {backend} {step:,}: p50 {figures['p50'] * 1000:.1f} ms, p99 "
              f"{figures['p99'] * 1000:.1f} ms (load {load_seconds:.0f} s)", flush=True)
        _progress(f"{backend} search {step}", figures)
        results.append(figures)
    return results


# ---- ingest cost --------------------------------------------------------------------

def _message(k: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Rita Rep <{USER}>"
    msg["To"] = f"Prospect {k} <p{k}@prospect{k % 50}.example>"
    msg["Subject"] = f"Offer {k}: the discount we agreed"
    msg["Message-ID"] = f"<ingest-{k}-{time.time_ns()}@bench.example>"
    msg["Date"] = "Mon, 16 Nov 2026 09:30:00 +0100"
    msg.set_content("Hello,\n\nas agreed, here is the offer with the discount of ten "
                    "percent on the yearly plan. Best regards,\nRita\n" * 3)
    return msg.as_bytes()


_SQLITE_TRIGGERS = ["search_emails_ai", "search_emails_au", "search_emails_ad",
                    "search_attachments_insert", "search_attachments_delete",
                    "search_attachments_update", "search_attachments_moved"]


async def _index_triggers(db: Any, on: bool, saved: dict[str, str]) -> None:
    from sqlalchemy import text

    async with db.transaction() as session:
        if db.is_sqlite:
            if not saved:
                for name in _SQLITE_TRIGGERS:
                    saved[name] = (await session.execute(text(
                        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :n"),
                        {"n": name})).scalar_one()
            for name, sql in saved.items():
                await session.execute(text(sql if on else f"DROP TRIGGER {name}"))
        else:
            action = "ENABLE" if on else "DISABLE"
            await session.execute(text(f"ALTER TABLE emails {action} TRIGGER "
                                       "search_emails_changed"))
            await session.execute(text(f"ALTER TABLE attachments {action} TRIGGER "
                                       "search_attachments_changed"))


async def _measure_ingest(db_url: str, data_dir: Path) -> tuple[float, float]:
    """Median seconds per message (with the index, without it)."""
    from core import pipeline
    from core.preparation import prepare
    from core.storage.blobs import LocalBlobStore
    from core.storage.db import Database
    from core.storage.models import Portal
    from core.types import Envelope

    portal_id, _ = await _setup(db_url)
    db = Database(db_url)
    blobs = LocalBlobStore(data_dir / "blobs")
    timings: dict[bool, list[float]] = {True: [], False: []}
    saved: dict[str, str] = {}
    try:
        k = 0
        for block in range(INGEST_BLOCKS):
            indexed = block % 2 == 0
            if block:
                await _index_triggers(db, indexed, saved)
            for _ in range(INGEST_BLOCK):
                k += 1
                raw = _message(k)
                started = time.perf_counter()
                prepared = await prepare(raw)

                async def work(session: Any, prepared: Any = prepared) -> Any:
                    portal = await session.get(Portal, portal_id)
                    return await pipeline.ingest(session, portal=portal, prepared=prepared,
                                                 envelope=Envelope(), blobs=blobs,
                                                 bcc_domain="bcc.localhost")

                result = await db.run(work)
                timings[indexed].append(time.perf_counter() - started)
                assert result.outcome == "logged", result
    finally:
        await db.dispose()
    return percentile(timings[True], 50), percentile(timings[False], 50)


ROW_BLOCKS, ROW_BLOCK = 6, 2_000


def _measure_rows(db_url: str, sqlite_path: Path | None) -> tuple[float, float]:
    """Seconds per email row written (with its source, one in ten with an attachment),
    with the index triggers and without: what the index costs the database itself,
    which the per-message figure hides in its noise (parsing, the commit's fsync)."""
    from core.storage.db import Database

    corpus = Corpus(seed=5)
    portal, user = asyncio.run(_setup(db_url))
    timings: dict[bool, list[float]] = {True: [], False: []}
    saved: dict[str, str] = {}
    loaded = 0
    for block in range(ROW_BLOCKS):
        indexed = block % 2 == 0

        async def toggle(indexed: bool = indexed) -> None:
            db = Database(db_url)
            try:
                await _index_triggers(db, indexed, saved)
            finally:
                await db.dispose()

        if block:
            asyncio.run(toggle())
        started = time.perf_counter()
        if sqlite_path is not None:
            load_sqlite(sqlite_path, corpus, loaded, loaded + ROW_BLOCK, portal, user)
        else:
            asyncio.run(load_postgres(db_url, corpus, loaded, loaded + ROW_BLOCK, portal, user,
                                      analyze=False))
        timings[indexed].append((time.perf_counter() - started) / ROW_BLOCK)
        loaded += ROW_BLOCK
    return percentile(timings[True], 50), percentile(timings[False], 50)


def _figure_rows(backend: str, searched: list[dict[str, Any]],
                 ingest: tuple[float, float]) -> list[Row]:
    largest = searched[-1]
    size = f"{largest['emails']:,} emails"
    rows = [Row("search", f"{backend}: search p{q}, {size}", largest[f"p{q}"] * 1000,
                largest[f"lookup_p{q}"] * 1000, "ms", "email by Message-ID")
            for q in (50, 99)]
    rows.append(Row("search", f"{backend}: ingest per message with the index",
                    ingest[0] * 1000, ingest[1] * 1000, "ms", "index triggers dropped"))
    return rows


def run() -> list[Row]:
    PROGRESS.unlink(missing_ok=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        from core.storage.db import sqlite_url

        urls = [new_pg_database() for _ in range(3)] if pg_available() else []
        try:
            # The ingest figures first: minutes, where the loads take the better part of
            # an hour.
            ingest = {"sqlite": asyncio.run(_measure_ingest(
                sqlite_url(Path(tmp) / "ingest.db"), Path(tmp)))}
            _progress("sqlite ingest", ingest["sqlite"])
            rows_db = Path(tmp) / "rows.db"
            _progress("sqlite rows", _measure_rows(sqlite_url(rows_db), rows_db))
            if urls:
                ingest["postgresql"] = asyncio.run(_measure_ingest(urls[0], Path(tmp)))
                _progress("postgresql ingest", ingest["postgresql"])
                _progress("postgresql rows", _measure_rows(urls[2], None))
            path = Path(tmp) / "search.db"
            searched = _search_backend("sqlite", sqlite_url(path), path)
            rows += _figure_rows("sqlite", searched, ingest["sqlite"])
            path.unlink()
            if urls:
                searched = _search_backend("postgresql", urls[1], None)
                rows += _figure_rows("postgresql", searched, ingest["postgresql"])
        finally:
            for url in urls:
                drop_pg_database(url)
    return rows


def section() -> str:
    """The "Search" section of docs/benchmarks.md, from the last run's every step."""
    found = json.loads(PROGRESS.read_text()) if PROGRESS.exists() else {}
    lines = ["## Search", "", (__doc__ or "").strip(), ""]
    for backend in ("sqlite", "postgresql"):
        steps = [v for k, v in found.items() if k.startswith(f"{backend} search ")]
        if not steps:
            continue
        lines += [f"### {backend}", ""]
        if f"{backend} ingest" in found:
            with_index, without = found[f"{backend} ingest"]
            lines += [f"Ingest through the pipeline, median per message:"
                      f" {with_index * 1000:.1f} ms with the index,"
                      f" {without * 1000:.1f} ms without.", ""]
        if f"{backend} rows" in found:
            with_index, without = found[f"{backend} rows"]
            lines += [f"Writing email rows in bulk, median per email: {with_index * 1e6:.0f} µs"
                      f" with the index triggers, {without * 1e6:.0f} µs without: the index"
                      f" adds {(with_index - without) * 1e6:.0f} µs to each logged email.", ""]
        kinds = list(steps[0]["kinds"])
        lines += ["| emails | load | search p50 | search p99 | by Message-ID p50 |"
                  + "".join(f" {kind} p50 / p99 |" for kind in kinds),
                  "| ---: | ---: | ---: | ---: | ---: |" + " ---: |" * len(kinds)]
        for step in steps:
            lines.append(
                f"| {step['emails']:,} | {step['load_seconds']:.0f} s"
                f" | {step['p50'] * 1000:.1f} ms | {step['p99'] * 1000:.1f} ms"
                f" | {step['lookup_p50'] * 1000:.2f} ms |"
                + "".join(f" {step['kinds'][k][0] * 1000:.0f} / {step['kinds'][k][1] * 1000:.0f}"
                          " ms |" for k in kinds))
        lines.append("")
    return "\n".join(lines) + "\n"


def write_section(doc: Path) -> None:
    """Put ``section()`` in place of the doc's "Search" section (at the end if none)."""
    text = doc.read_text() if doc.exists() else ""
    start = text.find("\n## Search\n")
    if start != -1:
        end = text.find("\n## ", start + 1)
        text = text[:start + 1] + (text[end + 1:] if end != -1 else "")
    doc.write_text(text.rstrip("\n") + "\n\n" + section())


if __name__ == "__main__":
    import sys

    from bench.__main__ import DOC, table

    if "--doc" not in sys.argv:
        print(table(run()))
    write_section(DOC)
    print(f"wrote the Search section of {DOC}")
