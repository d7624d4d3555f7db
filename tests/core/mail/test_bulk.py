"""automatic_reason: why a message is bulk or automatic, None for a person's email."""

from __future__ import annotations

import pytest

from core.mail.bulk import automatic_reason
from core.mail.parsing import parse_message


def message(headers: str = "", sender: str = "Jordan Miles <jordan@northwind.example>",
            subject: str = "Pricing") -> bytes:  # fmt: skip
    return (
        f"From: {sender}\r\nTo: anna@acme.example\r\nSubject: {subject}\r\n"
        f"Date: Mon, 16 Nov 2026 09:30:00 +0100\r\nMessage-ID: <m1@northwind.example>\r\n"
        f"{headers}\r\nHello Anna.\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (message("Auto-Submitted: auto-generated\r\n"), "auto-submitted"),
        (message("Auto-Submitted: auto-replied\r\n"), "auto-submitted"),
        (message("X-Auto-Response-Suppress: All\r\n"), "auto-submitted"),
        (message("X-Auto-Response-Suppress: DR, OOF, AutoReply\r\n"), "auto-submitted"),
        (message("Precedence: bulk\r\n"), "bulk precedence"),
        (message("Precedence: list\r\n"), "bulk precedence"),
        (message("Precedence: junk\r\n"), "bulk precedence"),
        (message("Precedence: auto_reply\r\n"), "out-of-office reply"),
        (message("List-Id: <sales.lists.example>\r\n"), "mailing list"),
        (message("List-Unsubscribe: <mailto:unsub@lists.example>\r\n"), "mailing list"),
        (message("X-Autoreply: yes\r\n"), "out-of-office reply"),
        (message("X-Autorespond: Out of office\r\n"), "out-of-office reply"),
        (message("X-Mailer: MailChimp Mailer - **CIDa1b2c3**\r\n"), "bulk mailer"),
        (message(sender="Mail Delivery Subsystem <MAILER-DAEMON@mx.example>"), "bounce"),
        (message(sender="postmaster@mx.example"), "bounce"),
        (
            message("Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n"),
            "bounce",
        ),
        (message(sender="Acme <noreply@acme.example>"), "no-reply sender"),
        (message(sender="no-reply@acme.example"), "no-reply sender"),
        (message(sender="no_reply@acme.example"), "no-reply sender"),
        (message(sender="donotreply@acme.example"), "no-reply sender"),
        (message(sender="do-not-reply@acme.example"), "no-reply sender"),
        (message(sender="notifications@github.example"), "no-reply sender"),
        (message(sender="bounce+abc123@mail.example"), "no-reply sender"),
        (message(subject="Automatic reply: Pricing"), "out-of-office reply"),
        (message(subject="Out of Office: Pricing"), "out-of-office reply"),
        (message(subject="Abwesenheitsnotiz: Angebot"), "out-of-office reply"),
        (message(subject="Réponse automatique : Devis"), "out-of-office reply"),
        (message(subject="Respuesta automática: Consulta"), "out-of-office reply"),
        (message(subject="Risposta automatica: Preventivo"), "out-of-office reply"),
        (message(subject="Automatisch antwoord: Offerte"), "out-of-office reply"),
    ],
)
def test_reason(raw: bytes, reason: str) -> None:
    """Each automatic-mail signal gives its short reason."""
    assert automatic_reason(parse_message(raw)) == reason


@pytest.mark.parametrize(
    "raw",
    [
        message(),
        message("Auto-Submitted: no\r\n"),
        message("X-Mailer: Microsoft Outlook 16.0\r\n"),
        message(subject="Re: Out of office supplies order"),
        message(sender="Noreen Replyson <noreen@northwind.example>"),
        message("Precedence: normal\r\n"),
    ],
)
def test_person_email_is_none(raw: bytes) -> None:
    """A normal person's email is not automatic."""
    assert automatic_reason(parse_message(raw)) is None
