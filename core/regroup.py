"""Correcting threads by hand: move an email to another thread, or split it off."""

from __future__ import annotations

from sqlalchemy import delete, exists, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.mail.threads import base_subject
from core.queries import email as owned_email
from core.queries import thread as owned_thread
from core.storage.models import Email, Thread, ThreadRef
from core.types import ThreadReason


async def move_to_thread(
    session: AsyncSession, portal_id: int, email_id: int, thread_id: int | None
) -> Email:
    """Put an email on thread ``thread_id``, or on a new thread of its own when None.

    Its Message-ID moves with it, so later replies to it follow it there; a thread
    left empty is removed.
    """
    email = await owned_email(session, portal_id, email_id)
    old_thread_id = email.thread_id
    if thread_id is None:
        thread = Thread(portal_id=portal_id, subject=base_subject(email.subject)[:998])
        session.add(thread)
        await session.flush()
    else:
        thread = await owned_thread(session, portal_id, thread_id)
    if thread.id == old_thread_id:
        return email
    email.thread_id = thread.id
    email.thread_reason = ThreadReason.MANUAL.value
    await session.execute(update(ThreadRef).where(
        ThreadRef.portal_id == portal_id, ThreadRef.message_id == email.message_id,
    ).values(thread_id=thread.id))
    await session.flush()
    await session.execute(delete(Thread).where(
        Thread.id == old_thread_id, ~exists().where(Email.thread_id == Thread.id)))
    return email
