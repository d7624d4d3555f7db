"""Roles within a portal over real HTTP: the admin runs the portal (settings, never-log
list, erasure, users, anyone's inbox and email); a user changes only their own emails
and reads only their own inbox (403 with a JSON error); another portal's ids stay 404."""

from __future__ import annotations

from email.utils import make_msgid
from typing import Any

import httpx
import pytest

from core import accounts
from core.storage.db import Database, sqlite_url
from core.storage.models import Inbox
from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server, run_coroutine

COLLEAGUE = "cole@ourco.example"


def _forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"
    assert response.json()["error"]["message"]


def _database(server: Server) -> Database:
    return Database(server.db_url or sqlite_url(server.data_dir / "inboxlog.db"))


@pytest.fixture
def colleague(server: Server, account: PortalAccount) -> dict[str, Any]:
    """A second user of the account's portal (made through core, as `inboxlog admin
    add-user` does: POST /api/v1/users has a test of its own)."""
    async def add() -> dict[str, Any]:
        db = _database(server)
        try:
            async with db.transaction() as session:
                user = await accounts.add_user(session, account.portal_id, COLLEAGUE,
                                               name="Cole")
                return {"id": user.user.id, "api_token": user.api_token}
        finally:
            await db.dispose()

    return run_coroutine(add)


def test_settings_and_the_never_log_list_are_admin_only(
    server: Server, account: PortalAccount
) -> None:
    """A user reads the settings but cannot change them (403, nothing changed); the admin can."""
    with server.api(account.user_token) as api:
        before = api.get("/api/v1/settings").json()
        _forbidden(api.patch("/api/v1/settings", json={"never_log": ["rival.example"]}))
        _forbidden(api.patch("/api/v1/settings", json={"log_attachments": False}))
        assert api.get("/api/v1/settings").json() == before
    with server.api(account.admin_token) as admin:
        changed = admin.patch("/api/v1/settings", json={"never_log": ["rival.example"]})
        assert changed.status_code == 200 and changed.json()["never_log"] == ["rival.example"]


def test_erasing_a_contact_is_admin_only(server: Server, account: PortalAccount) -> None:
    """DELETE /contacts/{id}?erase=true by a user is 403 and erases nothing."""
    email_id = logged_id(deliver(server, message(
        sender=account.user_email, to="gone@erase.example", message_id=make_msgid()),
        account.bcc_address))
    with server.api(account.user_token) as api:
        contact_id = api.get(f"/api/v1/emails/{email_id}").json()["contact_ids"][0]
        _forbidden(api.delete(f"/api/v1/contacts/{contact_id}", params={"erase": "true"}))
        assert api.get(f"/api/v1/contacts/{contact_id}").status_code == 200
        assert api.get(f"/api/v1/emails/{email_id}").status_code == 200
    other = server.new_portal("else@otherco.example")
    with server.api(other.admin_token) as stranger:
        assert stranger.delete(f"/api/v1/contacts/{contact_id}",
                               params={"erase": "true"}).status_code == 404
    with server.api(account.admin_token) as admin:
        erased = admin.delete(f"/api/v1/contacts/{contact_id}", params={"erase": "true"})
        assert erased.status_code == 200 and erased.json()["erased"]["emails"] == 1


def test_user_management_is_admin_only(server: Server, account: PortalAccount) -> None:
    """Only the admin lists and adds users; the new user's token works as theirs; a user
    cannot revoke a colleague's token (403), another portal's stays 404."""
    with server.api(account.admin_token) as admin:
        response = admin.post("/api/v1/users", json={"email": COLLEAGUE, "name": "Cole"})
    assert response.status_code == 201, response.text
    colleague = response.json()
    assert colleague["addresses"] == [COLLEAGUE] and colleague["api_token"].startswith("ilu_")
    with server.api(account.user_token) as api:
        _forbidden(api.get("/api/v1/users"))
        _forbidden(api.post("/api/v1/users", json={"email": "sneak@ourco.example"}))
        _forbidden(api.post("/api/v1/tokens", json={"user_id": colleague["id"]}))
    with server.api(colleague["api_token"]) as cole:
        me = cole.get("/api/v1/me").json()
        assert me["role"] == "user" and me["user"]["email"] == COLLEAGUE
        token_id = cole.get("/api/v1/tokens").json()["items"][0]["id"]
    with server.api(account.user_token) as api:
        _forbidden(api.delete(f"/api/v1/tokens/{token_id}"))
    with server.api(account.admin_token) as admin:
        listed = admin.get("/api/v1/users").json()["items"]
        assert [u["email"] for u in listed] == [account.user_email, COLLEAGUE]
        assert admin.post("/api/v1/users", json={"email": COLLEAGUE}).status_code == 422
    other = server.new_portal("else@otherco.example")
    with server.api(other.admin_token) as stranger:
        assert stranger.delete(f"/api/v1/tokens/{token_id}").status_code == 404
        assert [u["email"] for u in stranger.get("/api/v1/users").json()["items"]] == [
            "else@otherco.example"]


def test_a_user_deletes_restores_and_moves_only_their_own_emails(
    server: Server, account: PortalAccount, colleague: dict[str, Any]
) -> None:
    """A colleague's email is 403 to delete, restore or move (and stays as it was); one's
    own works; the admin may do all three; another portal gets 404."""
    mine = logged_id(deliver(server, message(
        sender=account.user_email, to="ann@acme.example", message_id=make_msgid()),
        account.bcc_address))
    theirs = logged_id(deliver(server, message(
        sender=COLLEAGUE, to="ann@acme.example", message_id=make_msgid()),
        account.bcc_address))
    with server.api(account.user_token) as api:
        thread_of_mine = api.get(f"/api/v1/emails/{mine}").json()["thread_id"]
        _forbidden(api.delete(f"/api/v1/emails/{theirs}"))
        _forbidden(api.post(f"/api/v1/emails/{theirs}/thread",
                            json={"thread_id": thread_of_mine}))
        _forbidden(api.post(f"/api/v1/emails/{theirs}/thread", json={"thread_id": None}))
        assert api.get(f"/api/v1/emails/{theirs}").status_code == 200  # still readable
        # One's own email: split off onto a thread of its own, deleted, restored.
        split = api.post(f"/api/v1/emails/{mine}/thread", json={"thread_id": None})
        assert split.status_code == 200
        thread_of_mine = split.json()["thread_id"]
        assert api.delete(f"/api/v1/emails/{mine}").status_code == 200
        assert api.post(f"/api/v1/emails/{mine}/restore").status_code == 200
    with server.api(colleague["api_token"]) as cole:
        assert cole.delete(f"/api/v1/emails/{theirs}").status_code == 200
    with server.api(account.user_token) as api:
        _forbidden(api.post(f"/api/v1/emails/{theirs}/restore"))
    other = server.new_portal("else@otherco.example")
    with server.api(other.admin_token) as stranger:
        assert stranger.delete(f"/api/v1/emails/{mine}").status_code == 404
        assert stranger.post(f"/api/v1/emails/{theirs}/restore").status_code == 404
    with server.api(account.admin_token) as admin:
        assert admin.post(f"/api/v1/emails/{theirs}/restore").status_code == 200
        assert admin.post(f"/api/v1/emails/{theirs}/thread",
                          json={"thread_id": thread_of_mine}).status_code == 200
        assert admin.delete(f"/api/v1/emails/{mine}").status_code == 200


def _stored_inbox(server: Server, portal_id: int, user_id: int) -> int:
    """An inbox row for ``user_id`` (no server behind it: reading it needs none)."""
    async def insert() -> int:
        db = _database(server)
        try:
            async with db.transaction() as session:
                inbox = Inbox(portal_id=portal_id, user_id=user_id, address=COLLEAGUE,
                              imap_host="imap.invalid", imap_port=993, imap_security="ssl",
                              smtp_host="smtp.invalid", smtp_port=465, smtp_security="ssl",
                              username=COLLEAGUE, secret="not a real secret",
                              status="disconnected", status_reason="test row")
                session.add(inbox)
                await session.flush()
                return inbox.id
        finally:
            await db.dispose()

    return run_coroutine(insert)


def test_a_colleagues_inbox_is_admin_only(
    server: Server, account: PortalAccount, colleague: dict[str, Any]
) -> None:
    """GET /inboxes/{id} and its sync are 403 to a colleague, fine for the owner (read)
    and the admin; another portal gets 404."""
    inbox_id = _stored_inbox(server, account.portal_id, colleague["id"])
    with server.api(account.user_token) as api:
        _forbidden(api.get(f"/api/v1/inboxes/{inbox_id}"))
        _forbidden(api.post(f"/api/v1/inboxes/{inbox_id}/sync"))
        assert api.get("/api/v1/inboxes").json()["items"] == []
    with server.api(colleague["api_token"]) as cole:
        assert cole.get(f"/api/v1/inboxes/{inbox_id}").json()["address"] == COLLEAGUE
    with server.api(account.admin_token) as admin:
        assert admin.get(f"/api/v1/inboxes/{inbox_id}").json()["user_id"] == colleague["id"]
    other = server.new_portal("else@otherco.example")
    with server.api(other.admin_token) as stranger:
        assert stranger.get(f"/api/v1/inboxes/{inbox_id}").status_code == 404
        assert stranger.post(f"/api/v1/inboxes/{inbox_id}/sync").status_code == 404
