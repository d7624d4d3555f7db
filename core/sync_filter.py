"""Before a body is fetched: which synced messages are worth a full parse and an ``admit``.

A big first sync is mostly parse time; under the replies-only rule most of a mailbox
cannot tie to a logged thread, and its headers alone say so. ``admit`` still decides
each message that passes; this only spares it the ones it would certainly refuse.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts
from core.routing import Privacy, sync_privacy
from core.storage.models import Email, Portal, ThreadRef, User

_MSG_ID = re.compile(r"<([^<>\s]+)>")
_HEADERS = BytesHeaderParser(policy=compat32)


@dataclass(frozen=True)
class HeaderGlance:
    """What the sync pre-filter reads from a header block (cheaply: no full parse)."""

    sender: str  # lower-case From address
    ids: frozenset[str]  # own Message-ID, In-Reply-To and References ids
    thread_index_only: bool  # Outlook Thread-Index with no reference headers

    @classmethod
    def of(cls, header: bytes) -> HeaderGlance:
        msg = _HEADERS.parsebytes(header)

        def text(name: str) -> str:
            return " ".join(str(v) for v in msg.get_all(name, []))

        references = text("In-Reply-To") + " " + text("References")
        return cls(parseaddr(text("From"))[1].strip().lower(),
                   frozenset(_MSG_ID.findall(references + " " + text("Message-ID"))),
                   bool(msg.get("Thread-Index")) and not references.strip())


def may_tie(glance: HeaderGlance, users: dict[str, User] | frozenset[str],
            known: set[str]) -> bool:
    """Whether mail held to ``Privacy.THREAD`` could be logged, from its headers (pure):
    a user's own (a tracked send's copy, a reply), a Thread-Index only the full parse
    can look up, or an id among the ``known`` ones (logged, or claimed by a thread).
    Anything else ``admit`` would refuse as "not part of a logged thread"."""
    return glance.sender in users or glance.thread_index_only or bool(glance.ids & known)


async def worth_admitting(session: AsyncSession, portal: Portal,
                          headers: list[bytes]) -> list[bool]:
    """For synced header blocks, which are worth a full parse and an ``admit``, found
    with two queries per 500 ids (the full parse is most of the cost of a big first
    sync). Under the replies-only rule (``routing.sync_privacy``), mail that cannot tie
    to a logged thread (``may_tie``) is not; under any other, all are."""
    if sync_privacy(portal.inbox_log_mode) is not Privacy.THREAD:
        return [True] * len(headers)
    glances = await asyncio.to_thread(lambda: [HeaderGlance.of(h) for h in headers])
    users = await accounts.users_by_address(session, portal.id)
    listed = sorted({i for g in glances for i in g.ids})
    known: set[str] = set()
    for start in range(0, len(listed), 500):
        chunk = listed[start:start + 500]
        known.update(await session.scalars(select(ThreadRef.message_id).where(
            ThreadRef.portal_id == portal.id, ThreadRef.message_id.in_(chunk))))
        known.update(await session.scalars(select(Email.message_id).where(
            Email.portal_id == portal.id, Email.message_id.in_(chunk))))
    return [may_tie(g, users, known) for g in glances]
