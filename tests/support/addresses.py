"""Alternate addresses for tests: a confirmation requested straight in the database."""

from __future__ import annotations

from core import user_addresses
from core.storage.db import Database, sqlite_url
from core.storage.models import User
from tests.support.server import Server, run_coroutine


def request_confirmation(server: Server, user_id: int, address: str) -> str:
    """What POST .../addresses stores, done in ``server``'s database, without a relay
    (and past the server's email_validator, which refuses special-use .test names);
    returns the confirmation link's token."""
    async def request() -> str:
        db = Database(server.db_url or sqlite_url(server.data_dir / "inboxlog.db"))
        try:
            async with db.transaction() as session:
                user = await session.get(User, user_id)
                assert user is not None
                return (await user_addresses.request(session, user, address)).token
        finally:
            await db.dispose()
    return run_coroutine(request)
