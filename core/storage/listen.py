"""PostgreSQL LISTEN: one connection per process that hears what other processes (nodes,
``--workers``) committed, so that work waiting here wakes at once instead of polling.

Migration 0014 makes every statement that inserts events ``pg_notify`` the channel
``EVENTS_CHANNEL`` with the ids of their portals, comma-separated (empty when too many
for one notification), delivered at commit, identical ones folded. ``Listener``
keeps a dedicated asyncpg connection listening, and reconnects when it drops: a
termination (server restart, connection killed) is seen at once, a silent one (a
half-open TCP connection) by a ``SELECT 1`` every ``check_every`` seconds. While it
is not listening, ``connected`` is False and callers fall back to polling; after every
(re)connection ``on_notify("")`` is called once, for whatever was missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import make_url

from core.storage import connections

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "inboxlog_events"


def asyncpg_dsn(url: str) -> str:
    """The libpq-style DSN asyncpg takes, from a ``postgresql+asyncpg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """LISTEN on ``channel`` of the database at ``url`` for as long as ``run_forever``
    runs, calling ``on_notify(payload)`` for each notification (on the event loop)."""

    def __init__(self, url: str, channel: str, on_notify: Callable[[str], None], *,
                 check_every: float = 15.0, retry_first: float = 0.5,
                 retry_most: float = 10.0) -> None:
        self.dsn = asyncpg_dsn(url)
        self.channel = channel
        self.on_notify = on_notify
        self.check_every = check_every
        self.retry_first, self.retry_most = retry_first, retry_most
        self.connected = False
        self.connections = 0  # made so far: a test sees a reconnection

    async def run_forever(self) -> None:
        delay = self.retry_first
        while True:
            try:
                await self._listen_once()
                delay = self.retry_first  # it was up: the next attempt starts afresh
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN %s: %s; again in %.1f s", self.channel,
                            f"{type(exc).__name__}: {exc}", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_most)

    async def _listen_once(self) -> None:
        """Connect, listen until the connection is lost; returns then (or raises)."""
        conn: Any = await asyncpg.connect(self.dsn, timeout=10, server_settings={
            "application_name": connections.current().name("listen")})
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(
                self.channel, lambda _conn, _pid, _channel, payload: self.on_notify(payload))
            self.connected = True
            self.connections += 1
            log.info("LISTEN %s: listening", self.channel)
            self.on_notify("")
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.check_every)
                    break
                await asyncio.wait_for(conn.fetchval("SELECT 1"), self.check_every)
            log.warning("LISTEN %s: the connection was lost; reconnecting", self.channel)
        finally:
            self.connected = False
            conn.terminate()
