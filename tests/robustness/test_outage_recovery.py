"""Repeated PostgreSQL outages: 451 while down, /healthz 503 then 200, service resumes alone.

tests/smtp_ingest/test_outage.py covers one outage of one session; this drives several
in a row, with concurrent sessions during each, on one server process never restarted.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from bench.load import small_message
from bench.smtpclient import Session
from tests.support import postgres
from tests.support.server import PortalAccount, Server

OUTAGES = 3
CONCURRENT = 10


async def _attempt(server: Server, account: PortalAccount, data: bytes) -> int:
    """One delivery in its own session: the first refusal or the DATA reply code."""
    session = await Session.open("127.0.0.1", server.smtp_port, timeout=30)
    try:
        return (await session.send(account.user_email, [account.bcc_address], data)).code
    finally:
        await session.quit()


async def _health_becomes(http: httpx.AsyncClient, status: int, within: float) -> float:
    """Poll /healthz until it answers ``status``; the seconds it took."""
    started = time.monotonic()
    while True:
        if (await http.get("/healthz")).status_code == status:
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"/healthz never answered {status}"
        await asyncio.sleep(0.1)


def _message(account: PortalAccount, tag: str) -> tuple[str, bytes]:
    message_id = f"<{uuid.uuid4().hex}@{tag}.outage.example>"
    return message_id, small_message(account.user_email, "ann@acme.example", 1, 1024,
                                     message_id=message_id)


async def test_repeated_outages_answer_451_and_recover_without_restart(pg_server: Server) -> None:
    """Three outages in a row: 451 and 503 while down, then 250 and 200 again, same process."""
    account = pg_server.new_portal()
    assert pg_server.process is not None
    pid = pg_server.process.pid
    url = pg_server.db_url
    logged: list[str] = []
    async with httpx.AsyncClient(base_url=pg_server.base_url, timeout=10) as http:
        # A session opened before the outages and kept across them all.
        long_lived = await Session.open("127.0.0.1", pg_server.smtp_port)
        try:
            for round_ in range(OUTAGES):
                message_id, data = _message(account, f"before{round_}")
                assert (await long_lived.send(account.user_email, [account.bcc_address],
                                              data)).code == 250
                logged.append(message_id)

                await postgres.set_available(url, False)
                try:
                    await _health_becomes(http, 503, within=10)
                    during = [_message(account, f"during{round_}") for _ in range(CONCURRENT)]
                    codes = await asyncio.wait_for(asyncio.gather(
                        *(_attempt(pg_server, account, d) for _, d in during),
                        long_lived.send(account.user_email, [account.bcc_address],
                                        _message(account, "long")[1]),
                    ), 60)
                    assert [c.code if not isinstance(c, int) else c for c in codes] == \
                        [451] * (CONCURRENT + 1), codes
                finally:
                    await postgres.set_available(url, True)

                await _health_becomes(http, 200, within=15)
                # The senders' MTAs retry after the 451s: now every one is logged.
                codes = await asyncio.gather(
                    *(_attempt(pg_server, account, d) for _, d in during))
                assert codes == [250] * CONCURRENT
                logged += [m for m, _ in during]

            message_id, data = _message(account, "after")
            assert (await long_lived.send(account.user_email, [account.bcc_address],
                                          data)).code == 250
            logged.append(message_id)
        finally:
            await long_lived.quit()

        headers = {"Authorization": f"Bearer {account.user_token}"}
        for message_id in logged:
            found = await http.get("/api/v1/emails", params={"message_id": message_id},
                                   headers=headers)
            assert len(found.json()["items"]) == 1, message_id
    assert pg_server.alive() and pg_server.process.pid == pid
