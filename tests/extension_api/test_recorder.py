"""The tracking-hit recorder survives a batch that cannot be recorded: that send's hits
are set aside and logged, every other hit keeps being recorded (pixels over real HTTP)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from core import accounts, tracked_sends
from core.runtime import Runtime, Settings
from core.storage.db import migrate
from core.storage.models import TrackingHit
from core.tracking import Hit
from extension_api.app import create_app
from tests.support.server import free_port

POISON = "poison/1.0"  # the user agent whose hits the test makes unrecordable
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36"


@dataclass
class Live:
    runtime: Runtime
    base_url: str
    user_token: str
    app: Any


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    """The API app served by uvicorn on a loopback port, in this test's event loop."""
    port = free_port()
    runtime = Runtime(Settings(data_dir=tmp_path, base_url=f"http://127.0.0.1:{port}",
                               secret_key="test-secret"))
    await migrate(runtime.db)
    async with runtime.db.transaction() as session:
        portal = await accounts.create_portal(session, "Recorder")
        user = await accounts.add_user(session, portal.portal.id, "rep@ourco.example")
    app = create_app(runtime)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                           log_level="warning", proxy_headers=True,
                                           forwarded_allow_ips="127.0.0.1"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield Live(runtime, f"http://127.0.0.1:{port}", user.api_token, app)
    finally:
        server.should_exit = True
        await task
        await runtime.close()


async def _stored_hits(runtime: Runtime, send_id: int) -> int:
    async with runtime.db.read() as session:
        return await session.scalar(select(func.count()).select_from(TrackingHit).where(
            TrackingHit.tracked_send_id == send_id)) or 0


async def test_a_poisoned_batch_is_set_aside_and_later_hits_are_recorded(
    live: Live, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One send's hits that make recording raise are set aside; the other sends' hits of
    the same batch and every later hit are stored."""
    real = tracked_sends.record_hits

    async def record_hits(session: Any, hits: Iterable[tuple[str, Hit]], **options: Any) -> int:
        hits = list(hits)
        if any(hit.user_agent == POISON for _, hit in hits):
            raise ValueError("a hit this database will not take")
        return await real(session, hits, **options)

    monkeypatch.setattr(tracked_sends, "record_hits", record_hits)
    headers = {"Authorization": f"Bearer {live.user_token}"}
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers) as api:
        sends = []
        for to in ("amy@buyer.example", "bob@buyer.example"):
            response = await api.post("/api/v1/tracked-sends", json={
                "to": [to], "subject": "Offer", "html": "<p>hello</p>"})
            assert response.status_code == 201, response.text
            sends.append(response.json())
        poisoned, healthy = sends
        with caplog.at_level(logging.ERROR, logger="extension_api.live"):
            # Both in one batch: the recorder flushes every 200 ms.
            for send, agent in ((poisoned, POISON), (healthy, CHROME)):
                pixel = await api.get(send["pixel_url"], headers={
                    "User-Agent": agent, "X-Forwarded-For": "203.0.113.7"})
                assert pixel.status_code == 200
            await asyncio.sleep(0.6)
            # Later hits still get recorded: the recorder did not die.
            later = await api.get(healthy["pixel_url"], headers={
                "User-Agent": CHROME, "X-Forwarded-For": "198.51.100.9"})
            assert later.status_code == 200
            for _ in range(50):
                if await _stored_hits(live.runtime, healthy["id"]) == 2:
                    break
                await asyncio.sleep(0.1)
        assert await _stored_hits(live.runtime, healthy["id"]) == 2
        assert await _stored_hits(live.runtime, poisoned["id"]) == 0
        recorder = live.app.state.recorder
        assert [hit.user_agent for _, hit in recorder.set_aside] == [POISON]
        assert any("setting aside 1 tracking hits" in r.getMessage() for r in caplog.records)
        # And the API still answers about both sends.
        assert (await api.get(f"/api/v1/tracked-sends/{poisoned['id']}")).status_code == 200


async def test_pending_hits_are_capped_per_send_and_in_all(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the database is away, a send's hits past its cap are dropped (counted), not
    kept: one URL replayed in a loop neither grows memory nor crowds out another send's
    hits; once recorded, a send may queue again, and with the database there no cap
    of a send applies (make bench's 21,000 opens of one send are all recorded)."""
    from core.errors import StorageUnavailable
    from extension_api import live as live_module

    monkeypatch.setattr(live_module, "MAX_PENDING_PER_SEND", 3)
    monkeypatch.setattr(live_module, "MAX_PENDING", 5)
    real = tracked_sends.record_hits
    away = True

    async def record_hits(session: Any, hits: Iterable[tuple[str, Hit]], **options: Any) -> int:
        if away:
            raise StorageUnavailable("the database is away")
        return await real(session, hits, **options)

    monkeypatch.setattr(tracked_sends, "record_hits", record_hits)
    recorder = live.app.state.recorder
    headers = {"Authorization": f"Bearer {live.user_token}"}
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers) as api:
        sends = []
        for to in ("amy@buyer.example", "bob@buyer.example", "cy@buyer.example"):
            response = await api.post("/api/v1/tracked-sends", json={
                "to": [to], "subject": "Offer", "html": "<p>hello</p>"})
            assert response.status_code == 201, response.text
            sends.append(response.json())
        flooded, other, third = sends

        async def opens(send: dict[str, Any], count: int) -> None:
            for n in range(count):
                pixel = await api.get(send["pixel_url"], headers={
                    "User-Agent": CHROME, "X-Forwarded-For": f"203.0.113.{n + 1}"})
                assert pixel.status_code == 200  # always the GIF

        await opens(flooded, 1)  # its flush finds the database away: backlogged now
        for _ in range(50):
            if recorder.backlogged:
                break
            await asyncio.sleep(0.05)
        assert recorder.backlogged
        await opens(flooded, 5)  # 3 kept in all, 3 over the send's cap
        await opens(other, 2)  # kept: 5 pending in all
        await opens(third, 1)  # over the cap in all
        assert recorder.dropped == 4
        away = False
        for _ in range(50):
            if (await _stored_hits(live.runtime, flooded["id"]),
                    await _stored_hits(live.runtime, other["id"])) == (3, 2):
                break
            await asyncio.sleep(0.1)
        assert await _stored_hits(live.runtime, flooded["id"]) == 3
        assert await _stored_hits(live.runtime, other["id"]) == 2
        assert await _stored_hits(live.runtime, third["id"]) == 0
        for _ in range(50):
            if not recorder.backlogged:
                break
            await asyncio.sleep(0.05)
        assert not recorder.backlogged
        await opens(flooded, 5)  # the database is back: past the send's cap, all kept
        for _ in range(50):
            if await _stored_hits(live.runtime, flooded["id"]) == 8:
                break
            await asyncio.sleep(0.1)
        assert await _stored_hits(live.runtime, flooded["id"]) == 8
        assert recorder.dropped == 4
