"""Two writers racing on PostgreSQL, one step at a time: the first stops inside its
open transaction (its locks taken), the second must then wait for it; only once the
second is seen waiting does the first commit. The race tests of core/ use it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts
from core.storage.models import TeamInbox
from core.tickets import inboxes

First = TypeVar("First")
Second = TypeVar("Second")


async def desk_inbox(session: AsyncSession) -> TeamInbox:
    """A new portal ("Desk") with one team inbox ("Support"), no members: what two
    writers race over."""
    portal = (await accounts.create_portal(session, "Desk")).portal
    return await inboxes.create_inbox(session, portal.id, inboxes.InboxChange(
        name="Support"))


class Hold:
    """Where the first writer stops, in its transaction: it says it is there and waits
    until the test lets it go on (to commit)."""

    def __init__(self) -> None:
        self.held, self.release = asyncio.Event(), asyncio.Event()

    async def here(self) -> None:
        self.held.set()
        await self.release.wait()


async def second_waits_for_first(
        first: Callable[[Hold], Coroutine[Any, Any, First]],
        second: Callable[[], Coroutine[Any, Any, Second]],
        what: str, timeout: float = 0.5,
) -> tuple[asyncio.Task[First], asyncio.Task[Second]]:
    """Runs ``first`` until it reaches its hold, then ``second``; asserts that ``second``
    has not finished ``timeout`` seconds later ("{what} did not wait for the first"),
    then lets ``first`` go on. Both tasks, to await for their results (or errors)."""
    hold = Hold()
    one = asyncio.create_task(first(hold))
    holding = asyncio.create_task(hold.held.wait())
    await asyncio.wait({one, holding}, return_when=asyncio.FIRST_COMPLETED)
    if one.done():
        one.result()  # it failed before holding: say why
    other = asyncio.create_task(second())
    done, _ = await asyncio.wait({other}, timeout=timeout)
    assert not done, f"{what} did not wait for the first"
    hold.release.set()
    return one, other
