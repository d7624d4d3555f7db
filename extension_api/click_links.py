"""The links of tracked sends as the click redirect sees them, cached: a click on a
link clicked before costs no database round trip.

An entry lives ``ttl`` seconds at most (a send deleted by another process, a
``inboxlog purge`` or a second server on the same database, stops redirecting within
that), and this process drops every entry at once when it deletes or restores an email
or erases a contact (``forget``): deletions are rare next to clicks. A lookup that was
under way when ``forget`` ran does not put its answer back.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from core import tracked_sends
from core.storage.db import Database
from core.tracked_sends import Links

DEFAULT_TTL = 30.0
DEFAULT_SIZE = 20_000


class LinkCache:
    def __init__(self, db: Database, *, ttl: float = DEFAULT_TTL, size: int = DEFAULT_SIZE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Links | None]] = OrderedDict()
        self._generation = 0

    async def get(self, send_token: str) -> Links | None:
        """The stored, not deleted send's links; None for an unknown or deleted send (a
        genuine signature is needed to ask, so unknown tokens are few: they are cached
        too)."""
        now = self._clock()
        entry = self._entries.get(send_token)
        if entry is not None and entry[0] > now:
            self._entries.move_to_end(send_token)
            return entry[1]
        generation = self._generation
        async with self._db.read() as session:
            links = await tracked_sends.links_of(session, send_token)
        if generation == self._generation:
            self._entries[send_token] = (now + self._ttl, links)
            self._entries.move_to_end(send_token)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return links

    def forget(self) -> None:
        """Drop every entry: an email was deleted or restored, a contact erased."""
        self._entries.clear()
        self._generation += 1
