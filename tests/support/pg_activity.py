"""The most PostgreSQL connections an `inboxlog serve` holds on its database, sampled
from ``pg_stat_activity`` in a thread of its own (tests/multinode/test_db_connections.py,
bench/db_connections.py)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import asyncpg

from core.storage.listen import asyncpg_dsn


class ConnectionPeaks:
    """The most connections named ``inboxlog serve...`` seen at once on one database, in
    all (``peak``) and by ``application_name`` (``by_name``), every ``every`` seconds."""

    def __init__(self, url: str, every: float = 0.005) -> None:
        self.url, self.every = url, every
        self.peak = 0
        self.by_name: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.url))
        try:
            while not self._stop.is_set():
                rows = await conn.fetch(
                    "SELECT application_name AS name, count(*) AS n FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name LIKE 'inboxlog serve%' GROUP BY 1")
                self.peak = max(self.peak, sum(row["n"] for row in rows))
                for row in rows:
                    self.by_name[row["name"]] = max(self.by_name[row["name"]], row["n"])
                self.samples += 1
                self._ready.set()
                await asyncio.sleep(self.every)
        finally:
            await conn.close()

    def __enter__(self) -> ConnectionPeaks:
        self._thread.start()
        assert self._ready.wait(10), "no sample of pg_stat_activity within 10 s"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
