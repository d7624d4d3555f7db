"""Through the real port: HTML of 200,000 nested ``<div>`` (2.2 MB; over 3 minutes of
a core in the sanitizer before core.mail.html_depth) is logged within seconds, with a
parse note, and another portal's mail meanwhile gets its 250 promptly."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.support.mail import deliver, logged_id, message
from tests.support.server import Server

DEPTH = 200_000


def _deep_html_mail(sender: str, message_id: str) -> bytes:
    # One tag a line: an SMTP line stays under 1000 octets.
    body = "<div>\r\n" * DEPTH + "deepest words\r\n" + "</div>\r\n" * DEPTH
    return (f"From: {sender}\r\nTo: kim@deep.example\r\nSubject: deep\r\n"
            f"Message-ID: {message_id}\r\nDate: Wed, 18 Nov 2026 08:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            + body).encode()


def test_deep_html_is_logged_in_seconds_and_other_portals_are_served(server: Server) -> None:
    portal_a = server.new_portal("rep@deep-a.example")
    portal_b = server.new_portal("rep@deep-b.example")
    replies: dict[int, tuple[tuple[int, str], float]] = {}

    def send_deep(n: int) -> None:
        start = time.monotonic()
        reply = deliver(server, _deep_html_mail(portal_a.user_email, f"<deep{n}@a.example>"),
                        portal_a.bcc_address)
        replies[n] = (reply, time.monotonic() - start)

    senders = [threading.Thread(target=send_deep, args=(n,)) for n in range(2)]
    for sender in senders:
        sender.start()
    # Portal B's mail, past the inline size so it is parsed in a worker thread too.
    other = message(sender=portal_b.user_email, to="ann@deep-b.example",
                    body="numbers\n" * 2000, message_id="<other@b.example>")
    start = time.monotonic()
    other_id = logged_id(deliver(server, other, portal_b.bcc_address))
    other_took = time.monotonic() - start
    for sender in senders:
        sender.join(timeout=120)
    assert other_took < 20, other_took  # ~0.1 s alone; the deep mails were over minutes
    assert sorted(replies) == [0, 1]
    for reply, took in replies.values():
        assert took < 30, took  # ~1-2 s each on 2 cores
        with server.api(portal_a.user_token) as api:
            email: dict[str, Any] = api.get(f"/api/v1/emails/{logged_id(reply)}").json()
        assert any("nested deeper than 512" in note for note in email["notes"]), email["notes"]
        assert "deepest words" in email["html"]
    with server.api(portal_a.user_token) as api:  # portal A cannot read B's mail
        assert api.get(f"/api/v1/emails/{other_id}").status_code == 404
