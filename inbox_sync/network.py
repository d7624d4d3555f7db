"""Blocking network work of connected inboxes (DNS, TCP and TLS connects, IMAP logins)
on an executor of its own, a bounded number at a time per user and per portal.

A server that accepts a connection and then says nothing holds a thread for the whole
time-out. On the loop's default executor those threads are the ones message parsing
(``pipeline.prepare``) needs, so one user's silent server delayed every portal's SMTP
``250``. Here such work waits for a slot of its own user and portal, then runs on
threads nobody else uses; waiting for a slot is bounded too (``too_many_connections``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from core.inboxes import InboxError
from core.storage.worker_threads import in_executor_to_the_end
from core.types import InboxErrorCode, MailProtocol

T = TypeVar("T")


@dataclass(frozen=True)
class NetworkLimits:
    threads: int = 32  # blocking network calls at once, all portals together
    per_portal: int = 8  # connections being opened or used at once, per portal
    per_user: int = 3  # the same, per user
    wait: float = 30  # longest wait for a slot before ``too_many_connections``


class _Counted:
    """A semaphore per key, dropped when nobody holds or waits for it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._held: dict[object, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, key: object) -> AsyncIterator[None]:
        semaphore, users = self._held.get(key, (asyncio.Semaphore(self.size), 0))
        self._held[key] = (semaphore, users + 1)
        try:
            async with semaphore:
                yield
        finally:
            semaphore, users = self._held[key]
            if users == 1:
                del self._held[key]
            else:
                self._held[key] = (semaphore, users - 1)


class NetworkWork:
    """The executor and the per-user and per-portal limits; one per InboxService."""

    def __init__(self, limits: NetworkLimits | None = None) -> None:
        self.limits = limits or NetworkLimits()
        self.executor = ThreadPoolExecutor(max_workers=self.limits.threads,
                                           thread_name_prefix="inbox-net")
        self._portals = _Counted(self.limits.per_portal)
        self._users = _Counted(self.limits.per_user)

    @contextlib.asynccontextmanager
    async def turn(self, portal_id: int, user_id: int, protocol: MailProtocol = MailProtocol.IMAP
                   ) -> AsyncIterator[None]:
        """Hold one of the user's and one of the portal's slots for the block. Raises
        InboxError ``too_many_connections`` when none frees up within ``limits.wait``."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                async with asyncio.timeout(self.limits.wait):
                    await stack.enter_async_context(self._users.slot(user_id))
                    await stack.enter_async_context(self._portals.slot(portal_id))
            except TimeoutError:
                raise InboxError(
                    InboxErrorCode.TOO_MANY_CONNECTIONS, "too many connections to mail servers "
                    "are in progress for this user or portal; try again shortly",
                    protocol=protocol) from None
            yield

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """Run a blocking call on the network executor, to its end even when the caller
        is cancelled (it may hold a socket the caller would otherwise close under it)."""
        return await in_executor_to_the_end(self.executor, function, *args)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
