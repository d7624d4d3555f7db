"""The synthetic Message-ID of a message that has none covers its html and the hashes of
its files: two such messages differing only there are two emails, one message sent twice
is one. Through the SMTP port and the HTTP API, then at the parsing level."""

from __future__ import annotations

import email.policy
import hashlib
import json
from email.message import EmailMessage
from typing import Any

from core.mail.parsing import parse_message, synthetic_message_id
from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server

DATE = "Tue, 17 Nov 2026 10:00:00 +0100"


def _without_id(account: PortalAccount, *, html: str | None = None,
                files: tuple[tuple[str, bytes], ...] = ()) -> EmailMessage:
    """The same sender, recipients, subject, date and text every time; no Message-ID."""
    msg = message(sender=account.user_email, to=["lou@synth.example", "max@synth.example"],
                  cc=["ned@synth.example"], subject="Offer", date=DATE,
                  body="Hi Lou,\n\nthe offer is attached.\n\nRita")
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, data in files:
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    assert "Message-ID" not in msg
    return msg


def _email(server: Server, account: PortalAccount, email_id: int) -> dict[str, Any]:
    with server.api(account.user_token) as api:
        body: dict[str, Any] = api.get(f"/api/v1/emails/{email_id}").json()
        return body


def test_messages_differing_only_in_attachments_are_two_emails(
    server: Server, account: PortalAccount
) -> None:
    """No Message-ID, same headers and text, another file (or one more): each is its own
    email with its own synthetic id and its own attachments."""
    one = _without_id(account, files=(("offer.pdf", b"%PDF-1.4 version one"),))
    two = _without_id(account, files=(("offer.pdf", b"%PDF-1.4 version two"),))
    both = _without_id(account, files=(("offer.pdf", b"%PDF-1.4 version one"),
                                       ("terms.pdf", b"%PDF-1.4 terms")))
    ids = [logged_id(deliver(server, msg, account.bcc_address)) for msg in (one, two, both)]
    assert len(set(ids)) == 3, ids
    emails = [_email(server, account, email_id) for email_id in ids]
    assert len({e["message_id"] for e in emails}) == 3
    assert all(e["message_id"].endswith("@synthetic.inboxlog") for e in emails)
    assert [[a["sha256"] for a in e["attachments"]] for e in emails] == [
        [hashlib.sha256(b"%PDF-1.4 version one").hexdigest()],
        [hashlib.sha256(b"%PDF-1.4 version two").hexdigest()],
        [hashlib.sha256(b"%PDF-1.4 version one").hexdigest(),
         hashlib.sha256(b"%PDF-1.4 terms").hexdigest()],
    ]


def test_messages_differing_only_in_html_are_two_emails(
    server: Server, account: PortalAccount
) -> None:
    """No Message-ID, same headers and text part, another html part: two emails; and
    neither is the text-only message."""
    plain = _without_id(account)
    blue = _without_id(account, html="<p style='color:blue'>Hi Lou, the offer.</p>")
    red = _without_id(account, html="<p style='color:red'>Hi Lou, the offer.</p>")
    ids = [logged_id(deliver(server, msg, account.bcc_address)) for msg in (plain, blue, red)]
    assert len(set(ids)) == 3, ids
    assert "blue" in _email(server, account, ids[1])["html"]
    assert "red" in _email(server, account, ids[2])["html"]


def test_the_same_message_twice_is_one_email(server: Server, account: PortalAccount) -> None:
    """One message with html and files, sent twice, once with LF and once with CRLF line
    endings: the same email id, one email."""
    msg = _without_id(account, html="<p>Hi Lou</p>",
                      files=(("offer.pdf", b"%PDF-1.4 the offer"), ("terms.pdf", b"%PDF t")))
    first = logged_id(deliver(server, msg.as_bytes(), account.bcc_address))
    again = logged_id(deliver(server, msg.as_bytes(policy=email.policy.SMTP),
                              account.bcc_address))
    assert again == first
    synthetic = _email(server, account, first)["message_id"]
    with server.api(account.user_token) as api:
        found = api.get("/api/v1/emails", params={"message_id": synthetic}).json()["items"]
    assert [e["id"] for e in found] == [first]
    assert len(found[0]["attachments"]) == 2


# --- the parsing level ----------------------------------------------------------------


def _old_formula(raw: bytes) -> str:
    """The synthetic id before html and files counted (header fields and text only)."""
    parsed = parse_message(raw)
    fields = [parsed.from_.key if parsed.from_ else "",
              parsed.date.isoformat() if parsed.date else "", parsed.subject,
              sorted({a.key for a in parsed.to + parsed.cc}),
              hashlib.sha256(parsed.text.strip().encode()).hexdigest()]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:32] + "@synthetic.inboxlog"


def _id(raw: bytes) -> str:
    return synthetic_message_id(parse_message(raw))


HEAD = (b"From: rita@ourco.example\nTo: lou@synth.example\nSubject: Offer\n"
        b"Date: " + DATE.encode() + b"\nMIME-Version: 1.0\n")


def _multipart(html: bytes | None, files: list[bytes]) -> bytes:
    parts = [b"Content-Type: text/plain\n\nHi Lou\n"]
    if html is not None:
        parts.append(b"Content-Type: text/html\n\n" + html + b"\n")
    parts += [b"Content-Type: application/pdf\nContent-Disposition: attachment; "
              b"filename=f.pdf\n\n" + data + b"\n" for data in files]
    return (HEAD + b'Content-Type: multipart/mixed; boundary="B"\n\n'
            + b"".join(b"--B\n" + part for part in parts) + b"--B--\n")


def test_html_and_file_hashes_change_the_id() -> None:
    """Another html, another file, one file more or less: another id."""
    ids = {_id(_multipart(None, [])), _id(_multipart(b"<p>a</p>", [])),
           _id(_multipart(b"<p>b</p>", [])), _id(_multipart(None, [b"one"])),
           _id(_multipart(None, [b"two"])), _id(_multipart(None, [b"one", b"two"])),
           _id(_multipart(b"<p>a</p>", [b"one"]))}
    assert len(ids) == 7


def test_the_same_message_has_the_same_id_whatever_its_line_endings() -> None:
    """CRLF or LF, the file order aside: the same html and files give the same id."""
    lf = _multipart(b"<p>a</p>", [b"one", b"two"])
    assert _id(lf) == _id(lf.replace(b"\n", b"\r\n"))
    assert _id(lf) == _id(_multipart(b"<p>a</p>", [b"two", b"one"]))
    assert _id(lf).endswith("@synthetic.inboxlog") and len(_id(lf).split("@")[0]) == 32


def test_a_text_only_message_keeps_the_id_it_had() -> None:
    """No html and no file: the id is the one computed before they counted, so a message
    logged then and sent again is still one email."""
    for raw in (HEAD + b"\nHi Lou\n", _multipart(None, []),
                b"Subject: only this\n\nbody\n", b""):
        assert _id(raw) == _old_formula(raw)
