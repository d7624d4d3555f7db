"""Sending mail to the server the way an MTA does, and reading its replies."""

from __future__ import annotations

import re
import smtplib
from email.message import EmailMessage

from tests.support.server import Server


def deliver(
    server: Server, raw: bytes | EmailMessage, rcpt: str | list[str], *,
    mail_from: str = "", smtp: smtplib.SMTP | None = None,
) -> tuple[int, str]:
    """One SMTP transaction; the DATA reply (or the first refusal before it)."""
    data = raw.as_bytes() if isinstance(raw, EmailMessage) else raw
    own = smtp is None
    conn = smtp or server.smtp()
    try:
        if own:
            conn.ehlo("client.test")
        code, text = conn.mail(mail_from)
        if code != 250:
            conn.rset()
            return code, text.decode()
        for address in [rcpt] if isinstance(rcpt, str) else rcpt:
            code, text = conn.rcpt(address)
            if code >= 400:
                conn.rset()
                return code, text.decode()
        code, text = conn.data(data)
        return code, text.decode()
    finally:
        if own:
            conn.quit()


def logged_id(reply: tuple[int, str]) -> int:
    """The email id from `250 2.0.0 logged <id>`; fails the test on any other reply."""
    code, text = reply
    match = re.fullmatch(r"2\.0\.0 logged (\d+)", text)
    assert code == 250 and match, f"not logged: {code} {text}"
    return int(match.group(1))


def message(
    *, sender: str, to: list[str] | str, subject: str = "Quarterly numbers",
    body: str = "Hello,\n\nhere are the numbers.\n\nRita", cc: list[str] | None = None,
    message_id: str | None = None, in_reply_to: str | None = None, date: str | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join([to] if isinstance(to, str) else to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = date or "Mon, 16 Nov 2026 09:30:00 +0100"
    if message_id:
        msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body)
    return msg
