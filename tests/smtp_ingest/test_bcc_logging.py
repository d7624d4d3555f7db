"""BCC logging through the real SMTP port, read back through the real HTTP API."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import make_msgid

from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
       b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00"
       b"\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def _rich_message(account: PortalAccount, message_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Rita Rep <{account.user_email}>"
    msg["To"] = "Ann Buyer <ann@acme-industries.example>, Bob <bob.private@gmail.com>"
    msg["Cc"] = "Carl Controller <carl@acme-industries.example>"
    msg["Subject"] = "Proposal for Acme"
    msg["Date"] = "Tue, 17 Nov 2026 14:05:00 +0100"
    msg["Message-ID"] = message_id
    msg.set_content("Hi Ann,\n\nthe proposal is attached.\n\nRita")
    msg.add_alternative(
        '<p>Hi Ann,</p><p>the proposal is attached.</p><img src="cid:logo@rep">', subtype="html"
    )
    alternatives = msg.get_payload()
    assert isinstance(alternatives, list)
    html_part = alternatives[1]
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(PNG, maintype="image", subtype="png", cid="<logo@rep>",
                          filename="logo.png")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="proposal.pdf")
    return msg


def test_bcc_email_is_logged_with_contacts_company_thread_and_attachments(
    server: Server, account: PortalAccount
) -> None:
    """A BCC'd email with 2 To, 1 Cc, an attachment and an inline image reads back whole."""
    message_id = make_msgid(domain="rep.example")
    email_id = logged_id(deliver(server, _rich_message(account, message_id), account.bcc_address,
                                 mail_from=account.user_email))

    with server.api(account.user_token) as api:
        email = api.get(f"/api/v1/emails/{email_id}").json()
        assert email["message_id"] == message_id.strip("<>")
        assert email["direction"] == "outgoing"
        assert email["sources"] == ["bcc"]
        assert email["from"] == {"email": account.user_email, "name": "Rita Rep"}
        assert [p["email"] for p in email["to"]] == ["ann@acme-industries.example",
                                                     "bob.private@gmail.com"]
        assert email["cc"] == [{"email": "carl@acme-industries.example",
                                "name": "Carl Controller"}]
        assert email["subject"] == "Proposal for Acme"
        assert email["sent_at"] == "2026-11-17T13:05:00Z"
        assert "the proposal is attached." in email["text"]
        assert "<p>Hi Ann,</p>" in email["html"]

        contacts = {}
        for address in ("ann@acme-industries.example", "bob.private@gmail.com",
                        "carl@acme-industries.example"):
            items = api.get("/api/v1/contacts", params={"email": address}).json()["items"]
            assert len(items) == 1, address
            contacts[address] = items[0]
        assert sorted(email["contact_ids"]) == sorted(c["id"] for c in contacts.values())
        ann, bob, carl = contacts.values()
        assert ann["name"] == "Ann Buyer"
        assert ann["company_id"] is not None
        assert carl["company_id"] == ann["company_id"]
        assert bob["company_id"] is None  # gmail.com is free mail: no company
        company = api.get(f"/api/v1/companies/{ann['company_id']}").json()
        assert company["domain"] == "acme-industries.example"
        assert company["name"] == "Acme Industries"

        thread = api.get(f"/api/v1/threads/{email['thread_id']}").json()
        assert [e["id"] for e in thread["emails"]] == [email_id]
        assert thread["subject"] == "Proposal for Acme"

        files = {a["filename"]: a for a in email["attachments"]}
        assert set(files) == {"proposal.pdf", "logo.png"}
        assert files["logo.png"]["inline"] is True
        assert files["logo.png"]["content_id"] == "logo@rep"
        for name, data in (("proposal.pdf", PDF), ("logo.png", PNG)):
            meta = files[name]
            assert meta["sha256"] == hashlib.sha256(data).hexdigest()
            assert meta["size"] == len(data)
            download = api.get(f"/api/v1/attachments/{meta['id']}")
            assert download.status_code == 200
            assert hashlib.sha256(download.content).hexdigest() == meta["sha256"]
            assert download.headers["content-disposition"].startswith("attachment")

        listed = api.get(f"/api/v1/contacts/{ann['id']}/attachments").json()["items"]
        assert {a["filename"] for a in listed} == {"proposal.pdf", "logo.png"}
        timeline = api.get(f"/api/v1/contacts/{bob['id']}/timeline").json()["items"]
        assert [e["id"] for e in timeline] == [email_id]


def test_identical_files_are_stored_once(server: Server, account: PortalAccount) -> None:
    """Two emails carrying the same file point at one blob in the content-addressed store."""
    ids = []
    for n in range(2):
        msg = message(sender=account.user_email, to="dana@blobco.example",
                      subject=f"copy {n}", message_id=make_msgid())
        msg.add_attachment(PDF, maintype="application", subtype="pdf", filename=f"f{n}.pdf")
        ids.append(logged_id(deliver(server, msg, account.bcc_address)))
    digest = hashlib.sha256(PDF).hexdigest()
    blob_files = list((server.data_dir / "blobs").rglob(digest))
    assert len(blob_files) == 1
    assert blob_files[0].read_bytes() == PDF


def test_reply_lands_on_the_same_thread(server: Server, account: PortalAccount) -> None:
    """The user's reply and a contact's forwarded reply join the first email's thread."""
    first_id = make_msgid(domain="rep.example")
    first = logged_id(deliver(server, message(
        sender=account.user_email, to="erin@threadco.example", message_id=first_id,
    ), account.bcc_address))
    contact_reply_id = make_msgid(domain="threadco.example")
    # The contact's reply reaches inboxlog through the user's forwarding rule: the
    # envelope sender is the user, the header From is the contact.
    contact_reply = logged_id(deliver(server, message(
        sender="Erin <erin@threadco.example>", to=account.user_email,
        subject="Re: Quarterly numbers", message_id=contact_reply_id, in_reply_to=first_id,
        date="Tue, 17 Nov 2026 10:00:00 +0100",
    ), account.bcc_address, mail_from=account.user_email))
    user_reply = logged_id(deliver(server, message(
        sender=account.user_email, to="erin@threadco.example", subject="Re: Quarterly numbers",
        message_id=make_msgid(), in_reply_to=contact_reply_id,
        date="Tue, 17 Nov 2026 11:00:00 +0100",
    ), account.bcc_address))

    with server.api(account.user_token) as api:
        emails = [api.get(f"/api/v1/emails/{i}").json()
                  for i in (first, contact_reply, user_reply)]
        assert len({e["thread_id"] for e in emails}) == 1
        assert [e["thread_reason"] for e in emails] == ["new", "in_reply_to", "in_reply_to"]
        assert emails[1]["direction"] == "incoming"
        assert emails[1]["sources"] == ["rule"]
        assert emails[1]["contact_ids"] == emails[0]["contact_ids"]
        thread = api.get(f"/api/v1/threads/{emails[0]['thread_id']}").json()
        assert [e["id"] for e in thread["emails"]] == [first, contact_reply, user_reply]


def test_unrelated_forwarded_mail_is_not_stored(server: Server, account: PortalAccount) -> None:
    """Rule-forwarded mail tied to no logged thread is accepted and not stored."""
    message_id = make_msgid(domain="stranger.example")
    code, text = deliver(server, message(
        sender="stranger@elsewhere.example", to=account.user_email, message_id=message_id,
    ), account.bcc_address, mail_from=account.user_email)
    assert (code, text) == (250, "2.0.0 not logged: not part of a logged thread")
    with server.api(account.user_token) as api:
        found = api.get("/api/v1/emails", params={"message_id": message_id}).json()
        assert found["items"] == []
        contacts = api.get("/api/v1/contacts", params={"email": "stranger@elsewhere.example"})
        assert contacts.json()["items"] == []


def test_same_message_twice_is_one_email(server: Server, account: PortalAccount) -> None:
    """Delivering one Message-ID twice answers the same email id and stores one email."""
    msg = message(sender=account.user_email, to="fay@dupco.example", message_id=make_msgid())
    first = logged_id(deliver(server, msg, account.bcc_address))
    second = logged_id(deliver(server, msg, account.bcc_address))
    assert first == second
    with server.api(account.user_token) as api:
        found = api.get("/api/v1/emails", params={"message_id": msg["Message-ID"]}).json()
        assert [e["id"] for e in found["items"]] == [first]


def test_message_without_message_id_is_deduplicated(server: Server, account: PortalAccount) -> None:
    """A message with no Message-ID gets a stable synthetic one: twice is still one email."""
    msg = message(sender=account.user_email, to="gil@noid.example", subject="no id here")
    assert "Message-ID" not in msg
    first = logged_id(deliver(server, msg, account.bcc_address))
    assert logged_id(deliver(server, msg, account.bcc_address)) == first


def test_unknown_recipient_is_refused(server: Server, account: PortalAccount) -> None:
    """RCPT to anything but a portal's logging address answers 550 5.1.1."""
    msg = message(sender=account.user_email, to="x@y.example")
    for rcpt in ("nobody@bcc.test", f"{account.bcc_address.split('@')[0]}@other.example",
                 "someone@gmail.com"):
        code, text = deliver(server, msg, rcpt)
        assert code == 550 and text.startswith("5.1.1"), (rcpt, code, text)


def test_tagged_logging_address_routes_to_the_portal(
    server: Server, account: PortalAccount
) -> None:
    """<token>+<tag>@domain is accepted and logs like the plain address."""
    token, domain = account.bcc_address.split("@")
    msg = message(sender=account.user_email, to="hal@tagco.example", message_id=make_msgid())
    logged_id(deliver(server, msg, f"{token}+deal-999999@{domain}"))


def test_non_user_sender_is_refused(server: Server, account: PortalAccount) -> None:
    """A message whose From, envelope and forwarding headers name no user gets 550 5.7.1."""
    msg = message(sender="mallory@evil.example", to="ivy@target.example",
                  message_id=make_msgid())
    code, text = deliver(server, msg, account.bcc_address, mail_from="mallory@evil.example")
    assert code == 550 and text.startswith("5.7.1")
    with server.api(account.user_token) as api:
        found = api.get("/api/v1/emails", params={"message_id": msg["Message-ID"]}).json()
        assert found["items"] == []


def test_user_alias_counts_as_the_user(server: Server) -> None:
    """Mail from a user's alias address is the user's outgoing mail."""
    account = server.new_portal("main@aliasco.example", "Sales@AliasCo.example")
    msg = message(sender="sales@aliasco.example", to="jo@buyer.example", message_id=make_msgid())
    email_id = logged_id(deliver(server, msg, account.bcc_address))
    with server.api(account.user_token) as api:
        assert api.get(f"/api/v1/emails/{email_id}").json()["direction"] == "outgoing"


def test_two_portals_one_refusing_still_answers_logged(server: Server) -> None:
    """A message BCC'd to two portals' addresses, from a user of only one, is logged there
    and answered 250: never a 550 for mail that was stored."""
    first = server.new_portal("ann@portal-one.example")
    second = server.new_portal("bea@portal-two.example")
    msg = message(sender=first.user_email, to="cid@both.example", message_id=make_msgid())
    email_id = logged_id(deliver(server, msg, [second.bcc_address, first.bcc_address]))
    with server.api(first.user_token) as api:
        assert api.get(f"/api/v1/emails/{email_id}").status_code == 200
    with server.api(second.user_token) as api:
        entries = api.get("/api/v1/ingest-log").json()["items"]
        assert [e["reason_code"] for e in entries] == ["not_a_user"]
