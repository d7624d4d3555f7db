"""Rotating a portal's logging address (issue 15): the old address keeps logging for the
grace period, then RCPT answers 550 5.1.1 with a hint that never names the new one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from core.storage.db import Database, sqlite_url
from core.storage.models import Portal
from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server, run_coroutine

REPLACED = (550, "5.1.1 This logging address was replaced; ask your admin for the new one")


def rotate(server: Server, account: PortalAccount, body: Any = None) -> dict[str, Any]:
    with server.api(account.admin_token) as api:
        response = (api.post("/api/v1/settings/rotate-logging-address") if body is None else
                    api.post("/api/v1/settings/rotate-logging-address", json=body))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def bcc(server: Server, account: PortalAccount, address: str) -> tuple[int, str]:
    return deliver(server, message(sender=account.user_email, to="carl@customer.example"),
                   address, mail_from=account.user_email)


def end_grace_period(server: Server, portal_id: int) -> None:
    """What the passing of the grace period does, done to the server's database."""
    async def expire() -> None:
        db = Database(server.db_url or sqlite_url(server.data_dir / "inboxlog.db"))
        try:
            async with db.transaction() as session:
                await session.execute(update(Portal).where(Portal.id == portal_id).values(
                    previous_token_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        finally:
            await db.dispose()
    run_coroutine(expire)


def test_the_old_address_logs_during_the_grace_period_then_answers_with_a_hint(
        server: Server) -> None:
    account = server.new_portal()
    old = account.bcc_address
    before = datetime.now(UTC)
    rotated = rotate(server, account)
    new = rotated["bcc_address"]
    assert new != old and rotated["previous_address"] == old
    until = datetime.fromisoformat(rotated["previous_valid_until"].replace("Z", "+00:00"))
    assert timedelta(days=7) <= until - before < timedelta(days=7, minutes=1)
    with server.api(account.user_token) as api:
        assert api.get("/api/v1/me").json()["portal"]["bcc_address"] == new

    logged_id(bcc(server, account, old))
    local, domain = old.split("@")
    logged_id(bcc(server, account, f"{local}+acme@{domain}"))  # tags too
    logged_id(bcc(server, account, new))

    end_grace_period(server, account.portal_id)
    code, text = bcc(server, account, old)
    assert (code, text) == REPLACED
    assert new.split("@")[0] not in text
    logged_id(bcc(server, account, new))


def test_no_grace_period_and_a_second_rotation(server: Server) -> None:
    account = server.new_portal()
    first = account.bcc_address
    second = rotate(server, account, {"grace_days": 0})["bcc_address"]
    assert bcc(server, account, first) == REPLACED
    third = rotate(server, account, {"grace_days": 3})["bcc_address"]
    logged_id(bcc(server, account, second))  # the one just replaced: in its grace period
    logged_id(bcc(server, account, third))
    # The first is forgotten: an unknown address again.
    assert bcc(server, account, first) == (550, "5.1.1 No such logging address")


def test_only_an_admin_rotates_and_the_grace_period_is_bounded(server: Server) -> None:
    account = server.new_portal()
    path = "/api/v1/settings/rotate-logging-address"
    with server.api(account.user_token) as api:
        assert api.post(path, json={}).status_code == 403
    with server.api(account.admin_token) as api:
        for body in ({"grace_days": 91}, {"grace_days": -1}, {"grace_days": "7"},
                     {"grace_days": True}, {"days": 7}):
            assert api.post(path, json=body).status_code == 422, body
    logged_id(bcc(server, account, account.bcc_address))  # nothing was rotated
