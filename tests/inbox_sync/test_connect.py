"""Connecting an inbox: both logins tested, a precise error for each failure."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tests.inbox_sync.conftest import Mailbox, new_portal
from tests.support.addresses import request_confirmation
from tests.support.server import free_port


def test_connect_tests_both_logins_and_never_returns_the_password(mailbox: Mailbox) -> None:
    """A good connect answers 201 with the inbox, without the password, stored encrypted."""
    inbox = mailbox.connect()
    assert inbox["address"] == mailbox.address
    assert inbox["status"] == "connected"
    assert inbox["imap"] == {"host": "127.0.0.1", "port": mailbox.dovecot.imap_port,
                             "security": "none"}
    assert mailbox.password not in str(inbox)
    db = sqlite3.connect(mailbox.server.data_dir / "inboxlog.db")
    (secret,) = db.execute("select secret from inboxes where id = ?", (inbox["id"],)).fetchone()
    db.close()
    assert mailbox.password not in secret and secret.startswith("gAAAA")  # Fernet
    assert mailbox.password not in mailbox.server.log()
    key_file = mailbox.server.data_dir / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    with mailbox.server.api(mailbox.account.user_token) as api:
        assert api.get(f"/api/v1/inboxes/{inbox['id']}").json()["id"] == inbox["id"]


def _imap(mailbox: Mailbox, **server: Any) -> dict[str, Any]:
    return mailbox.connect_body(imap={"host": "127.0.0.1", "port": mailbox.dovecot.imap_port,
                                      "security": "none", **server})


@pytest.mark.parametrize("case", [
    "name_not_found", "connection_refused", "tls_self_signed", "tls_plain_port",
    "auth_rejected", "app_password_required", "no_imap", "smtp_auth_rejected",
    "smtp_connection_refused",
])
def test_each_failure_has_its_own_error(mailbox: Mailbox, case: str) -> None:
    """Each way a connect fails answers its own error code, and nothing is stored."""
    smtp_port = mailbox.recorder.port
    bodies = {
        "name_not_found": (_imap(mailbox, host="imap.nowhere.invalid"), "name_not_found"),
        "connection_refused": (_imap(mailbox, port=free_port()), "connection_refused"),
        "tls_self_signed": (_imap(mailbox, port=mailbox.dovecot.imaps_port, security="ssl"),
                            "tls_failure"),
        "tls_plain_port": (_imap(mailbox, security="ssl"), "tls_failure"),
        "auth_rejected": (mailbox.connect_body(password="wrong"), "auth_rejected"),
        "app_password_required": (mailbox.connect_body(address="app@ourco.example",
                                                                password="anything"),
                                  "app_password_required"),
        "no_imap": (_imap(mailbox, port=smtp_port), "no_imap"),
        "smtp_auth_rejected": (None, "auth_rejected"),
        "smtp_connection_refused": (mailbox.connect_body(smtp={
            "host": "127.0.0.1", "port": free_port(), "security": "none"}),
            "connection_refused"),
    }
    body, code = bodies[case]
    if case == "smtp_auth_rejected":
        mailbox.recorder.add_user(mailbox.address, "another-password")
        body = mailbox.connect_body()
    if case == "app_password_required":
        # The portal user is this address too, so only the login can fail.
        token = new_portal(mailbox.server, "app@ourco.example").user_token
    else:
        token = mailbox.account.user_token
    with mailbox.server.api(token) as api:
        response = api.post("/api/v1/inboxes", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == code, response.text
        if case.startswith("smtp_"):
            assert "SMTP" in response.json()["error"]["message"]
        assert api.get("/api/v1/inboxes").json()["items"] == []


def test_settings_are_checked_before_connecting(mailbox: Mailbox) -> None:
    """Bad settings answer 422 invalid_input; an undetectable domain asks for them."""
    with mailbox.server.api(mailbox.account.user_token) as api:
        bad = api.post("/api/v1/inboxes", json=_imap(mailbox, security="tls13"))
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"
        body = {"address": mailbox.address, "password": "x"}  # ourco.example has no SRV
        unknown = api.post("/api/v1/inboxes", json=body)
        assert unknown.status_code == 422
        assert "give imap and smtp" in unknown.json()["error"]["message"]


def test_a_mailbox_under_another_address_needs_that_address_confirmed(mailbox: Mailbox) -> None:
    """A mailbox whose address is not yet the user's is refused (logging in proves
    nothing: the user picks the server) until the address's confirmation link was
    followed; then mail sent from it is their outgoing mail, never a contact's."""
    other = f"sales-{mailbox.address.split('@')[0]}@mailbox-two.example"
    mailbox.dovecot.add_user(other, "second-password")
    mailbox.recorder.add_user(other, "second-password")
    with mailbox.server.api(mailbox.account.user_token) as api:
        refused = api.post("/api/v1/inboxes", json=mailbox.connect_body(
            address=other, password="second-password"))
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "address_not_confirmed"
        assert other not in api.get("/api/v1/me").json()["user"]["addresses"]
    token = request_confirmation(mailbox.server, mailbox.account.user_id, other)
    with mailbox.server.api(None) as api:
        assert api.post("/confirm-address", data={"token": token}).status_code == 200
    with mailbox.server.api(mailbox.account.user_token) as api:
        response = api.post("/api/v1/inboxes", json=mailbox.connect_body(
            address=other, password="second-password"))
        assert response.status_code == 201, response.text
        assert other in api.get("/api/v1/me").json()["user"]["addresses"]
        sent = api.post("/api/v1/emails/send", json={
            "inbox_id": response.json()["id"], "to": ["customer@buyer-two.example"],
            "subject": "From my second mailbox", "text": "Hello"})
        assert sent.status_code == 201, sent.text
        email = sent.json()["email"]
        assert email["direction"] == "outgoing"
        assert api.get("/api/v1/contacts", params={"email": other}).json()["items"] == []
