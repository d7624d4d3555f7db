"""How many PostgreSQL connections `serve` holds under ingest and API load, by pool.

`python -m bench.db_connections 2 [--db-connections N ...]` (not in `make bench`; needs
INBOXLOG_TEST_PG_URL) starts one server on a fresh database with that many workers
(and the other arguments), sends ``BENCH_CONNECTIONS_MESSAGES`` (600) messages over 20
SMTP sessions while ``BENCH_CONNECTIONS_API_CLIENTS`` (20; 0: none) API clients read
timelines, samples ``pg_stat_activity`` of the database every 20 ms, and prints one
JSON line: the peak of all the server's connections, and the peak of each
``application_name`` (process and pool, ``core.storage.connections``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.common import Server, drop_pg_database, new_pg_database, running
from bench.load import load, make_messages
from bench.smtp_ingest import USER, _contact
from tests.support.pg_activity import ConnectionPeaks

MESSAGES = int(os.environ.get("BENCH_CONNECTIONS_MESSAGES", "600"))
API_CLIENTS = int(os.environ.get("BENCH_CONNECTIONS_API_CLIENTS", "20"))  # 0: SMTP alone


async def api_load(base_url: str, token: str, contact_id: int, until: asyncio.Event,
                   clients: int = 20) -> collections.Counter[int]:
    """``clients`` API callers reading a timeline and /me in turn until ``until``."""
    codes: collections.Counter[int] = collections.Counter()

    async def caller(client: httpx.AsyncClient) -> None:
        while not until.is_set():
            for path in (f"/api/v1/contacts/{contact_id}/timeline", "/api/v1/me"):
                codes[(await client.get(path)).status_code] += 1

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        await asyncio.gather(*(caller(client) for _ in range(clients)))
    return codes


async def _both(server: Server, rcpt: str, token: str) -> tuple[Any, Any]:
    until = asyncio.Event()
    async with httpx.AsyncClient(base_url=server.base_url,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        found = (await client.get("/api/v1/contacts", params={"email": _contact(0)})).json()
    contact_id = found["items"][0]["id"] if found["items"] else 1
    api = asyncio.ensure_future(api_load(server.base_url, token, contact_id, until,
                                         API_CLIENTS))
    smtp = await load(server.smtp_port, USER, rcpt, make_messages(MESSAGES, USER, _contact))
    until.set()
    return smtp, await api


def run_once(args: list[str]) -> dict[str, Any]:
    url = new_pg_database()
    with tempfile.TemporaryDirectory(prefix="bench-connections-") as tmp:
        try:
            with running(Server(Path(tmp), db_url=url, extra_args=tuple(args))) as server:
                portal = server.new_portal(USER)
                asyncio.run(load(server.smtp_port, USER, portal.bcc_address,
                                 make_messages(20, USER, _contact)))
                with ConnectionPeaks(url, every=0.02) as peaks:
                    smtp, api = asyncio.run(_both(server, portal.bcc_address,
                                                  portal.user_token))
        finally:
            drop_pg_database(url)
    return {"args": args, "messages": smtp.ok, "smtp_codes": smtp.codes,
            "messages_per_s": round(smtp.rate, 1), "api_codes": dict(api),
            "peak_connections": peaks.peak, "samples": peaks.samples,
            "peak_by_name": dict(sorted(peaks.by_name.items()))}


def main(argv: list[str]) -> None:
    workers = argv[0] if argv else "2"
    extra = argv[1:]
    args = (["--workers", workers] if workers != "1" else []) + extra
    print(json.dumps(run_once(args)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
