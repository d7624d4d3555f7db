"""Line endings through the real SMTP port: bare LF as smtplib sends it (kept as CRLF),
mixed endings, the 64 KB line limit per line whatever its ending, and no end of DATA but
CRLF.CRLF (SPEC.md, "Line endings")."""

from __future__ import annotations

import base64
import hashlib
import os
import smtplib
import socket
import uuid
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest

from tests.support.mail import logged_id
from tests.support.server import PortalAccount, Server

LINE_LIMIT = 64 * 1024  # per line, its CRLF included


def _email(server: Server, account: PortalAccount, email_id: int) -> dict[str, Any]:
    with server.api(account.user_token) as api:
        body: dict[str, Any] = api.get(f"/api/v1/emails/{email_id}").json()
        return body


def _download(server: Server, account: PortalAccount, attachment_id: int) -> bytes:
    with server.api(account.user_token) as api:
        response = api.get(f"/api/v1/attachments/{attachment_id}")
        assert response.status_code == 200
        return response.content


def _data(smtp: smtplib.SMTP, account: PortalAccount, raw: bytes) -> tuple[int, str]:
    """MAIL, RCPT and ``smtplib``'s ``data(raw)`` (bytes as they are, dots stuffed after
    every LF) on an open session; the reply to the final dot."""
    assert smtp.mail(account.user_email)[0] == 250
    assert smtp.rcpt(account.bcc_address)[0] == 250
    code, text = smtp.data(raw)
    return code, text.decode()


def _head(account: PortalAccount, subject: str, eol: bytes = b"\n") -> bytes:
    return eol.join([
        f"From: Rita <{account.user_email}>".encode(), b"To: kim@endings.example",
        f"Subject: {subject}".encode(), f"Message-ID: {make_msgid()}".encode(),
        b"Date: Wed, 18 Nov 2026 08:00:00 +0000", b"MIME-Version: 1.0",
        b"Content-Type: text/plain; charset=utf-8", b"Content-Transfer-Encoding: 8bit",
        b"", b"",
    ])


def test_five_mb_attachment_sent_with_bare_lf_is_logged_byte_exact(
    server: Server, account: PortalAccount
) -> None:
    """`smtp.data(msg.as_bytes())` (README's example: LF line endings) with a 5 MB
    attachment is logged, the attachment downloads byte for byte, the text is intact."""
    data = os.urandom(5 * 1024 * 1024)
    text = "Hello Kim,\n\n.the numbers attached.\n..\n.\nRita\n"
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = account.user_email, "kim@endings.example", "Q3"
    msg["Message-ID"] = make_msgid()
    msg.set_content(text)
    msg.add_attachment(data, maintype="application", subtype="octet-stream",
                       filename="q3.bin")
    raw = msg.as_bytes()
    assert b"\r\n" not in raw and len(raw) > 6 * 1024 * 1024  # one "line" of 7 MB at CRLF
    with server.smtp() as smtp:
        smtp.ehlo("client.test")
        email_id = logged_id(_data(smtp, account, raw))
    logged = _email(server, account, email_id)
    assert logged["text"] == text
    [meta] = logged["attachments"]
    assert (meta["filename"], meta["size"]) == ("q3.bin", len(data))
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert _download(server, account, meta["id"]) == data


def test_mixed_line_endings_are_one_message(server: Server, account: PortalAccount) -> None:
    """Headers in CRLF, a text part in LF, an attachment part in CRLF, over several 64 KB
    reads: one email, the text and the attachment as sent."""
    boundary = "b-" + uuid.uuid4().hex
    payload = os.urandom(300_000)
    b64 = base64.encodebytes(payload)  # 76-character lines ending in LF
    lines = [f"line {n:05d} {'.' * (n % 3)}end" for n in range(6000)]
    raw = (
        f"From: Rita <{account.user_email}>\r\nTo: kim@endings.example\r\n"
        f"Subject: mixed\r\nMessage-ID: {make_msgid()}\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\n"
        "Content-Type: text/plain; charset=utf-8\n\n" + "\n".join(lines) + "\n"
        f"--{boundary}\r\n"
        'Content-Type: application/octet-stream; name="p.bin"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="p.bin"\r\n\r\n'
    ).encode() + b64.replace(b"\n", b"\r\n") + f"--{boundary}--\n".encode()
    with server.smtp() as smtp:
        smtp.ehlo("client.test")
        email_id = logged_id(_data(smtp, account, raw))
    logged = _email(server, account, email_id)
    assert logged["text"] == "\n".join(lines)  # the LF before a boundary is the boundary's
    [meta] = logged["attachments"]
    assert meta["sha256"] == hashlib.sha256(payload).hexdigest()
    assert _download(server, account, meta["id"]) == payload


def test_line_limit_counts_bare_lf_lines_and_the_session_goes_on(
    server: Server, account: PortalAccount
) -> None:
    """A bare-LF line of 64 KB - 2 bytes before its ending is logged; one byte more is
    answered 500 5.5.2, nothing is stored, and the same session logs the next message."""
    longest = "x" * (LINE_LIMIT - 2)
    with server.smtp() as smtp:
        smtp.ehlo("client.test")
        fits = _head(account, "fits") + f"first\n{longest}\nlast\n".encode()
        logged = _email(server, account, logged_id(_data(smtp, account, fits)))
        # smtplib ends data that does not end in CRLF with one: an empty last line.
        assert logged["text"] == f"first\n{longest}\nlast\n\n"

        over = _head(account, "over") + f"first\n{longest}y\nlast\n".encode()
        code, text = _data(smtp, account, over)
        assert (code, text) == (500, "5.5.2 Line too long")
        assert smtp.noop()[0] == 250
        after = _head(account, "after") + b"fine\n"
        assert _email(server, account, logged_id(_data(smtp, account, after)))["text"] == "fine\n\n"
    with server.api(account.user_token) as api:
        subjects = [e["subject"] for e in
                    api.get(f"/api/v1/contacts/{logged['contact_ids'][0]}/timeline")
                    .json()["items"]]
    assert sorted(subjects) == ["after", "fits"]


def test_lone_cr_ends_no_line(server: Server, account: PortalAccount) -> None:
    """A lone CR is no line ending: 40 KB + CR + 40 KB is one 80 KB line, refused 500
    5.5.2 (no client dot-stuffs after a CR, so it cannot be taken as a line end)."""
    half = b"z" * (40 * 1024)
    with server.smtp() as smtp:
        smtp.ehlo("client.test")
        code, text = _data(smtp, account, _head(account, "cr") + half + b"\r" + half + b"\n")
        assert (code, text) == (500, "5.5.2 Line too long")
        assert smtp.noop()[0] == 250


def _raw_session(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.recv(4096)
    return sock


def _replies(sock: socket.socket, count: int) -> list[bytes]:
    """The next ``count`` final reply lines (continuation lines skipped)."""
    buffer, found = b"", list[bytes]()
    while len(found) < count:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {found}"
        buffer += chunk
        *lines, buffer = buffer.split(b"\r\n")
        found += [line for line in lines if line[3:4] != b"-"]
    return found


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r\n.\r",
                                      b"\r.\r\n"], ids=repr)
def test_smuggling_sequences_do_not_end_a_bare_lf_message(
    server: Server, account: PortalAccount, fake_end: bytes
) -> None:
    """In a bare-LF message past several reads, a fake end of data followed by a second
    transaction is body text: one reply, one email, the smuggled one never logged."""
    smuggled_id = f"<{uuid.uuid4().hex}@smuggled.example>"
    smuggled = (f"MAIL FROM:<{account.user_email}>\r\nRCPT TO:<{account.bcc_address}>\r\n"
                f"DATA\r\nFrom: {account.user_email}\r\nTo: victim@endings.example\r\n"
                f"Message-ID: {smuggled_id}\r\nSubject: forged\r\n\r\nforged\r\n").encode()
    filler = b"".join(b"filler line %05d\n" % n for n in range(8000))  # ~150 KB
    body = _head(account, "carrier") + filler + b"carrier" + fake_end + smuggled
    sock = _raw_session(server.smtp_port)
    try:
        sock.sendall(b"EHLO client.test\r\n" + f"MAIL FROM:<{account.user_email}>\r\n"
                     f"RCPT TO:<{account.bcc_address}>\r\nDATA\r\n".encode())
        assert [r[:3] for r in _replies(sock, 4)] == [b"250", b"250", b"250", b"354"]
        sock.sendall(body + b".\r\nNOOP\r\n")
        reply, noop = _replies(sock, 2)
        assert reply.startswith(b"250 2.0.0 logged ") and noop.startswith(b"250"), (reply, noop)
        sock.sendall(b"QUIT\r\n")
        assert _replies(sock, 1)[0].startswith(b"221")
    finally:
        sock.close()
    email_id = int(reply.split()[-1])
    text = _email(server, account, email_id)["text"]
    assert text.startswith("filler line 00000\n") and "carrier" in text
    assert "RCPT TO:" in text and text.endswith("forged\n")
    with server.api(account.user_token) as api:
        found = api.get("/api/v1/emails", params={"message_id": smuggled_id}).json()
    assert found["items"] == []
