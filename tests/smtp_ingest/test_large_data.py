"""DATA through the real port (smtplib): large attachments byte-exact, dot-stuffing and
the end of data wherever reads split them, the size limit, smuggling sequences."""

from __future__ import annotations

import email.policy
import hashlib
import os
import smtplib
import time
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest

from tests.support.mail import deliver, logged_id
from tests.support.server import PortalAccount, Server

READ = 64 * 1024  # the server's stream limit: DATA arrives in reads of about this much


def _head(account: PortalAccount, message_id: str, subject: str = "data") -> bytes:
    return (f"From: Rita <{account.user_email}>\r\nTo: kim@data.example\r\n"
            f"Subject: {subject}\r\nMessage-ID: {message_id}\r\n"
            "Date: Wed, 18 Nov 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n").encode()


def _open_data(smtp: smtplib.SMTP, account: PortalAccount) -> None:
    smtp.ehlo("client.test")
    assert smtp.mail(account.user_email)[0] == 250
    assert smtp.rcpt(account.bcc_address)[0] == 250
    smtp.putcmd("data")
    assert smtp.getreply()[0] == 354


def _send_raw(smtp: smtplib.SMTP, *pieces: bytes) -> tuple[int, str]:
    """Send DATA bytes exactly as given (smtplib's data() would rewrite line endings and
    dots), pausing between pieces so the server reads them apart; the reply."""
    for number, piece in enumerate(pieces):
        if number:
            time.sleep(0.3)
        smtp.send(piece)
    code, text = smtp.getreply()
    return code, text.decode()


def _email(server: Server, account: PortalAccount, email_id: int) -> dict[str, Any]:
    with server.api(account.user_token) as api:
        body: dict[str, Any] = api.get(f"/api/v1/emails/{email_id}").json()
        return body


def test_large_attachment_is_stored_byte_exact(server: Server, account: PortalAccount) -> None:
    """A 6 MB attachment is logged with its size and sha256, downloads byte for byte, and
    leaves no spool file behind."""
    data = os.urandom(6 * 1024 * 1024)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = account.user_email, "ann@big.example", "dataset"
    msg["Message-ID"] = make_msgid()
    msg.set_content("The dataset.")
    msg.add_attachment(data, maintype="application", subtype="octet-stream",
                       filename="dataset.bin")
    # CRLF line endings: smtplib sends bytes as they are, and 8 MB of LF-only lines
    # would be one SMTP line, over the limit.
    raw = msg.as_bytes(policy=email.policy.SMTP)
    logged = _email(server, account, logged_id(deliver(server, raw, account.bcc_address)))
    [meta] = logged["attachments"]
    assert (meta["filename"], meta["size"]) == ("dataset.bin", len(data))
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    with server.api(account.user_token) as api:
        assert api.get(f"/api/v1/attachments/{meta['id']}").content == data
    spool = server.data_dir / "blobs" / ".spool"
    deadline = time.monotonic() + 5
    while any(spool.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(spool.iterdir()) == []


def _dotted_body() -> tuple[bytes, str]:
    """~200 KB of text with lines starting with dots, as sent (stuffed) and as logged."""
    lines = [f"{'.' * (1 + n % 3)}line {n:05d} {'x' * (n % 50)}" for n in range(3000)]
    sent = "".join(("." + line if line.startswith(".") else line) + "\r\n" for line in lines)
    return sent.encode(), "".join(line + "\n" for line in lines)


@pytest.mark.parametrize("shift", [0, 1, 2, 3, 5])
def test_dot_stuffing_is_undone_at_a_read_boundary(
    server: Server, account: PortalAccount, shift: int
) -> None:
    """Dot lines right where the server's first large read ends (before the dot, between
    CR and LF, after the CRLF) are unstuffed exactly once."""
    head = _head(account, make_msgid())
    sent, logged = _dotted_body()
    stream = head + sent
    # The first read ends 4 bytes before what has arrived; aim it at a line's dot.
    dot = stream.index(b"\r\n.", READ + 100) + 2
    first = dot + 4 - shift
    with server.smtp() as smtp:
        _open_data(smtp, account)
        reply = _send_raw(smtp, stream[:first], stream[first:] + b".\r\n")
    assert _email(server, account, logged_id(reply))["text"] == logged


@pytest.mark.parametrize("size", [300, 3 * READ])
@pytest.mark.parametrize("split", [1, 2, 3, 4])
def test_end_of_data_split_across_sends(
    server: Server, account: PortalAccount, size: int, split: int
) -> None:
    """CRLF.CRLF sent in two parts (a pause in the middle) ends DATA, with one reply, and
    the same connection goes on."""
    body = b"".join(b"%07d\r\n" % n for n in range(size // 9))
    stream = _head(account, make_msgid()) + body + b".\r\n"
    with server.smtp() as smtp:
        _open_data(smtp, account)
        email_id = logged_id(_send_raw(smtp, stream[: -split], stream[-split:]))
        assert smtp.noop()[0] == 250
    assert _email(server, account, email_id)["text"] == body.decode().replace("\r\n", "\n")


def test_over_the_limit_the_session_stays_in_step(
    server: Server, account: PortalAccount
) -> None:
    """51 MB is answered 552 5.3.4 after the final dot, nothing is kept, and the next
    message on the same connection is logged."""
    message_id = make_msgid()
    line = b"y" * 998 + b"\r\n"
    stream = _head(account, message_id) + line * (51 * 1024 * 1024 // len(line)) + b".\r\n"
    with server.smtp() as smtp:
        _open_data(smtp, account)
        code, text = _send_raw(smtp, stream)
        assert code == 552 and text.startswith("5.3.4"), (code, text)
        smtp.ehlo_resp = None
        assert smtp.mail(account.user_email)[0] == 250
        assert smtp.rcpt(account.bcc_address)[0] == 250
        smtp.putcmd("data")
        assert smtp.getreply()[0] == 354
        logged_id(_send_raw(smtp, _head(account, make_msgid()) + b"fine\r\n.\r\n"))
    with server.api(account.user_token) as api:
        assert api.get("/api/v1/emails", params={"message_id": message_id}).json()["items"] == []


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r.\r", b"\r\n.\r", b"\n.\r\n", b"\r.\r\n",
                                      b"\r\n.\n"], ids=repr)
def test_smuggling_sequences_stay_in_the_body(
    server: Server, account: PortalAccount, fake_end: bytes
) -> None:
    """A bare-LF or bare-CR end of data followed by commands is body text: one message,
    one reply, the commands logged as text, the connection in step."""
    smuggled = (f"MAIL FROM:<{account.user_email}>\r\nRCPT TO:<{account.bcc_address}>\r\n"
                "DATA\r\nSubject: forged\r\n\r\nforged\r\n").encode()
    stream = _head(account, make_msgid()) + b"carrier" + fake_end + smuggled + b".\r\n"
    with server.smtp() as smtp:
        _open_data(smtp, account)
        email_id = logged_id(_send_raw(smtp, stream))
        assert smtp.noop()[0] == 250
    text = _email(server, account, email_id)["text"]
    assert text.startswith("carrier") and "RCPT TO:" in text and text.endswith("forged\n")
