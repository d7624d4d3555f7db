"""Limits and malformed input at the SMTP port: a defined reply each, and the server lives."""

from __future__ import annotations

from email.utils import make_msgid
from typing import Any

import pytest

from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server


def _headers(account: PortalAccount, message_id: str, extra: str = "") -> bytes:
    return (
        f"From: Rita <{account.user_email}>\r\nTo: kim@malformed.example\r\n"
        f"Subject: malformed\r\nMessage-ID: {message_id}\r\n"
        f"Date: Wed, 18 Nov 2026 08:00:00 +0000\r\n{extra}"
    ).encode()


def _still_serving(server: Server, account: PortalAccount) -> None:
    msg = message(sender=account.user_email, to="ok@fine.example", message_id=make_msgid())
    logged_id(deliver(server, msg, account.bcc_address))


def _stored(server: Server, account: PortalAccount, message_id: str) -> list[dict[str, Any]]:
    with server.api(account.user_token) as api:
        items: list[dict[str, Any]] = api.get(
            "/api/v1/emails", params={"message_id": message_id}).json()["items"]
        return items


def test_oversized_message_gets_552_and_nothing_is_stored(
    server: Server, account: PortalAccount
) -> None:
    """A 51 MB message is answered 552 5.3.4 after DATA, and nothing of it is stored."""
    message_id = make_msgid()
    body = (b"x" * 998 + b"\r\n") * (51 * 1024 * 1024 // 1000)
    raw = _headers(account, message_id) + b"\r\n" + body
    code, text = deliver(server, raw, account.bcc_address)
    assert code == 552 and text.startswith("5.3.4"), (code, text)
    assert _stored(server, account, message_id) == []
    _still_serving(server, account)


def test_declared_oversize_is_refused_at_mail_from(server: Server, account: PortalAccount) -> None:
    """MAIL FROM with SIZE over the limit is refused before any data is sent."""
    with server.smtp() as smtp:
        smtp.ehlo("client.test")
        code, text = smtp.mail(account.user_email, options=["SIZE=53000000"])
        assert code == 552 and text.decode().startswith("5.3.4")


def test_one_megabyte_header_line_gets_a_defined_reply(
    server: Server, account: PortalAccount
) -> None:
    """A single 1 MB header line is refused with 500 5.5.2, and the session goes on."""
    message_id = make_msgid()
    raw = _headers(account, message_id, "X-Huge: " + "a" * 1024 * 1024 + "\r\n") + b"\r\nbody\r\n"
    with server.smtp() as smtp:
        smtp.ehlo("client.test")
        code, text = deliver(server, raw, account.bcc_address, smtp=smtp)
        assert code == 500 and text.startswith("5.5.2"), (code, text)
        # The same connection still works after the refusal.
        ok = message(sender=account.user_email, to="ok@fine.example", message_id=make_msgid())
        logged_id(deliver(server, ok, account.bcc_address, smtp=smtp))
    assert _stored(server, account, message_id) == []


def test_huge_folded_header_block_is_refused_before_parsing(
    server: Server, account: PortalAccount
) -> None:
    """A header block over the cap (many folded lines) gets 552 5.3.4 instead of a parse."""
    message_id = make_msgid()
    folded = "X-Folded: start\r\n" + "".join(f" continuation {i:06d}\r\n" for i in range(20_000))
    raw = _headers(account, message_id, folded) + b"\r\nbody\r\n"
    code, text = deliver(server, raw, account.bcc_address)
    assert code == 552 and text.startswith("5.3.4") and "header" in text, (code, text)
    _still_serving(server, account)


@pytest.mark.parametrize(
    ("name", "extra_headers", "body", "expected_text"),
    [
        (
            "truncated boundary",
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BOUND\"\r\n",
            b"--BOUND\r\nContent-Type: text/plain\r\n\r\nthe visible part\r\n--BOUND\r\n"
            b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBER",
            "the visible part",
        ),
        (
            "unknown charset",
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n",
            "Grüße aus Köln".encode(),
            "Grüße aus Köln",
        ),
        (
            "undeclared 8-bit latin-1",
            "",
            "Café crème à la française".encode("latin-1"),
            "Café crème à la française",
        ),
        (
            "undeclared 8-bit utf-8",
            "",
            "Zażółć gęślą jaźń".encode(),
            "Zażółć gęślą jaźń",
        ),
        (
            "NUL bytes",
            "",
            b"before\x00after",
            "beforeafter",
        ),
    ],
)
def test_malformed_mime_is_logged_best_effort(
    server: Server, account: PortalAccount, name: str, extra_headers: str, body: bytes,
    expected_text: str,
) -> None:
    """Broken MIME is logged with the readable text recovered, not refused or crashed."""
    message_id = make_msgid()
    raw = _headers(account, message_id, extra_headers) + b"\r\n" + body + b"\r\n"
    email_id = logged_id(deliver(server, raw, account.bcc_address))
    with server.api(account.user_token) as api:
        email = api.get(f"/api/v1/emails/{email_id}").json()
    assert expected_text in email["text"], (name, email["text"])
    assert server.alive()


def test_message_without_headers_is_refused_clearly(server: Server, account: PortalAccount) -> None:
    """Bytes with no From at all cannot be authorized: 550 5.7.1, and the server goes on."""
    code, text = deliver(server, b"just some text\r\nno headers at all\r\n", account.bcc_address)
    assert code == 550 and text.startswith("5.7.1"), (code, text)
    _still_serving(server, account)


def test_too_many_recipients_get_452(server: Server, account: PortalAccount) -> None:
    """Past 100 recipients RCPT answers 452 4.5.3; the first hundred are kept."""
    with server.smtp() as smtp:
        smtp.ehlo("client.test")
        smtp.mail(account.user_email)
        for _ in range(100):
            assert smtp.rcpt(account.bcc_address)[0] == 250
        code, text = smtp.rcpt(account.bcc_address)
        assert code == 452 and text.decode().startswith("4.5.3")
        msg = message(sender=account.user_email, to="lee@many.example", message_id=make_msgid())
        code, text = smtp.data(msg.as_bytes())
        assert code == 250 and text.decode().startswith("2.0.0 logged")
