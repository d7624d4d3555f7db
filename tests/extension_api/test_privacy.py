"""Privacy controls end to end: settings at the SMTP port, deletion, erasure, the audit
log of everything not logged, and `inboxlog purge`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server


def _audit(server: Server, account: PortalAccount) -> list[dict[str, Any]]:
    with server.api(account.user_token) as api:
        response = api.get("/api/v1/ingest-log")
        assert response.status_code == 200
        result: list[dict[str, Any]] = response.json()["items"]
        return result


def test_audit_log_explains_every_message_not_logged(
    server: Server, account: PortalAccount
) -> None:
    """Each refusal leaves a metadata-only entry: who, which address, why; newest first."""
    stranger_id = make_msgid()
    assert deliver(server, message(sender="mallory@evil.example", to="v@victim.example",
                                   message_id=stranger_id),
                   account.bcc_address, mail_from="mallory@evil.example")[0] == 550
    unrelated_id = make_msgid()
    assert deliver(server, message(sender="news@shop.example", to=account.user_email,
                                   message_id=unrelated_id, body="secret body words"),
                   account.bcc_address, mail_from=account.user_email)[0] == 250
    with server.api(account.admin_token) as api:
        assert api.patch("/api/v1/settings", json={"never_log": ["hr.example"]}).status_code == 200
    never_id = make_msgid()
    code, text = deliver(server, message(sender=account.user_email, to="boss@hr.example",
                                         message_id=never_id), account.bcc_address)
    assert (code, text) == (250, "2.0.0 not logged: on the never-log list")
    huge_headers = (f"From: {account.user_email}\r\nTo: a@b.example\r\n"
                    + "".join(f"X-Pad-{i}: {'p' * 70}\r\n" for i in range(4000))
                    + "\r\nbody\r\n").encode()
    assert deliver(server, huge_headers, account.bcc_address)[0] == 552
    oversize = (f"From: {account.user_email}\r\nTo: a@b.example\r\n\r\n").encode() + (
        b"y" * 998 + b"\r\n") * (51 * 1024 * 1024 // 1000)
    assert deliver(server, oversize, account.bcc_address)[0] == 552

    entries = _audit(server, account)
    assert [e["reason_code"] for e in entries] == [
        "too_large", "too_large", "never_log", "not_in_thread", "not_a_user"]
    by_code = {e["reason_code"]: e for e in reversed(entries)}
    assert by_code["not_a_user"]["sender"] == "mallory@evil.example"
    assert by_code["not_a_user"]["message_id"] == stranger_id.strip("<>")
    assert by_code["not_in_thread"]["reason"] == "not part of a logged thread"
    assert by_code["not_in_thread"]["envelope_sender"] == account.user_email
    assert by_code["never_log"]["message_id"] == never_id.strip("<>")
    for entry in entries:
        assert entry["logging_address"] == account.bcc_address
        assert "secret body words" not in str(entry)
    # Another portal sees none of it.
    other = server.new_portal("other@elsewhere.example")
    assert _audit(server, other) == []


def test_never_log_applies_to_mail_already_in_a_thread(
    server: Server, account: PortalAccount
) -> None:
    """Once a domain is on the never-log list, its replies in a logged thread are not logged."""
    root = make_msgid()
    logged_id(deliver(server, message(sender=account.user_email, to="gus@later.example",
                                      message_id=root), account.bcc_address))
    with server.api(account.admin_token) as api:
        api.patch("/api/v1/settings", json={"never_log": ["later.example"]})
    reply = message(sender="gus@later.example", to=account.user_email, message_id=make_msgid(),
                    in_reply_to=root)
    code, text = deliver(server, reply, account.bcc_address, mail_from=account.user_email)
    assert (code, text) == (250, "2.0.0 not logged: on the never-log list")


def test_delete_and_restore_an_email(
    server: Server, account: PortalAccount
) -> None:
    """DELETE hides the email from reads and timelines; restore brings it back."""
    email_id = logged_id(deliver(server, message(
        sender=account.user_email, to="hil@gone.example", message_id=make_msgid()),
        account.bcc_address))
    with server.api(account.user_token) as api:
        contact_id = api.get(f"/api/v1/emails/{email_id}").json()["contact_ids"][0]
        deleted = api.delete(f"/api/v1/emails/{email_id}")
        assert deleted.status_code == 200
        body = deleted.json()
        until = datetime.fromisoformat(body["restorable_until"])
        assert until - datetime.fromisoformat(body["deleted_at"]) == timedelta(days=90)
        assert api.get(f"/api/v1/emails/{email_id}").status_code == 404
        assert api.get(f"/api/v1/contacts/{contact_id}/timeline").json()["items"] == []
        restored = api.post(f"/api/v1/emails/{email_id}/restore")
        assert restored.status_code == 200 and restored.json()["id"] == email_id
        timeline = api.get(f"/api/v1/contacts/{contact_id}/timeline").json()["items"]
        assert [e["id"] for e in timeline] == [email_id]
    other = server.new_portal("someone@other.example")
    with server.api(other.user_token) as api:
        assert api.delete(f"/api/v1/emails/{email_id}").status_code == 404
        assert api.post(f"/api/v1/emails/{email_id}/restore").status_code == 404


def test_deleted_email_arriving_again_is_not_resurrected(
    server: Server, account: PortalAccount
) -> None:
    """A deleted email's Message-ID arriving again stays deleted and says so."""
    msg = message(sender=account.user_email, to="ian@again.example", message_id=make_msgid())
    email_id = logged_id(deliver(server, msg, account.bcc_address))
    with server.api(account.user_token) as api:
        api.delete(f"/api/v1/emails/{email_id}")
    code, text = deliver(server, msg, account.bcc_address)
    assert code == 250 and text.startswith("2.0.0 not logged: this message was deleted")
    assert _audit(server, account)[0]["reason_code"] == "deleted"


def test_erase_contact_removes_their_emails_and_files(
    server: Server, account: PortalAccount
) -> None:
    """DELETE /contacts/{id}?erase=true removes emails and files only that person needed."""
    private = b"only jane's file"
    alone = message(sender=account.user_email, to="jane@erase.example", message_id=make_msgid())
    alone.add_attachment(private, maintype="application", subtype="pdf", filename="jane.pdf")
    alone_id = logged_id(deliver(server, alone, account.bcc_address))
    shared_id = logged_id(deliver(server, message(
        sender=account.user_email, to=["jane@erase.example", "kurt@erase.example"],
        message_id=make_msgid()), account.bcc_address))
    with server.api(account.admin_token) as api:
        attachment = api.get(f"/api/v1/emails/{alone_id}").json()["attachments"][0]
        jane = api.get("/api/v1/contacts", params={"email": "jane@erase.example"}).json()
        jane_id = jane["items"][0]["id"]
        assert api.delete(f"/api/v1/contacts/{jane_id}?erase=maybe").status_code == 400
        response = api.delete(f"/api/v1/contacts/{jane_id}", params={"erase": "true"})
        assert response.status_code == 200
        assert response.json()["erased"]["emails"] == 1
        assert response.json()["erased"]["attachments"] == 1
        assert api.get(f"/api/v1/contacts/{jane_id}").status_code == 404
        assert api.get(f"/api/v1/emails/{alone_id}").status_code == 404
        assert api.get(f"/api/v1/attachments/{attachment['id']}").status_code == 404
        shared = api.get(f"/api/v1/emails/{shared_id}").json()
        assert len(shared["contact_ids"]) == 1
    assert list((server.data_dir / "blobs").rglob(attachment["sha256"])) == []


def test_purge_command_prints_counts_per_rule(tmp_path: Path) -> None:
    """`inboxlog purge --now` far ahead removes header metadata and prints every rule."""
    # A server of its own: purging 70 days ahead would empty other tests' audit logs.
    server = Server(tmp_path / "purge").start()
    account = server.new_portal()
    try:
        _purge_far_ahead(server, account)
    finally:
        server.stop()


def _purge_far_ahead(server: Server, account: PortalAccount) -> None:
    logged_id(deliver(server, message(sender=account.user_email, to="lu@purge.example",
                                      message_id=make_msgid()), account.bcc_address))
    later = (datetime.now(UTC) + timedelta(days=70)).isoformat()
    counts = server.cli("purge", "--now", later)
    assert set(counts) == {"sync_headers", "extension_full", "crm_send_headers",
                           "header_metadata", "deleted_emails", "ingest_log", "web_links",
                           "web_sessions", "blobs", "acknowledgements"}
    assert counts["header_metadata"] >= 1
    again = server.cli("purge", "--now", later)
    assert again["header_metadata"] == 0
