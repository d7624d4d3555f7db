"""Recognise bulk and automatic mail (lists, bounces, auto-replies); pure."""

from __future__ import annotations

import re

from core.mail.parsing import ParsedMessage

_PRECEDENCE = frozenset({"bulk", "list", "junk", "auto_reply"})
_SUPPRESS = frozenset({"all", "oof", "autoreply"})
# X-Mailer values of bulk-mail platforms.
_BULK_MAILERS = re.compile(
    r"mailchimp|sendgrid|sendinblue|brevo|mailgun|amazon ses|constant contact|campaign monitor"
    r"|mailjet|hubspot|marketo|pardot|klaviyo|phplist|acumbamail|moosend|getresponse"
    r"|mailerlite|emarsys|salesforce marketing cloud|exacttarget|aweber|activecampaign",
    re.IGNORECASE,
)
_BOUNCE_LOCALS = frozenset({"mailer-daemon", "postmaster"})
_NO_REPLY_LOCAL = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|notifications?|notify"
    r"|bounces?|mailer-daemon|automated|auto[-_.]?reply|no[-_.]?responder|nepasrepondre"
    r"|ne[-_.]?pas[-_.]?repondre|keine[-_.]?antwort|noresponder|naoresponda)(?:[-+_.].*)?$",
    re.IGNORECASE,
)
_OUT_OF_OFFICE = re.compile(
    r"^\s*(?:automatic reply|auto(?:matic)?[- ]?reply|autoreply|out of (?:the )?office"
    r"|abwesenheitsnotiz|automatische antwort|réponse automatique|absence du bureau"
    r"|respuesta automática|fuera de la oficina|risposta automatica|fuori sede"
    r"|automatisch antwoord|afwezig|resposta automática|ausente|automatiskt svar"
    r"|automatisk svar|automaattinen vastaus|odpowiedź automatyczna|automatická odpověď"
    r"|automatikus válasz|автоматический ответ|otomatik yanıt|otomatik cevap)\b",
    re.IGNORECASE,
)


def automatic_reason(parsed: ParsedMessage) -> str | None:
    """Why ``parsed`` is bulk or automatic mail, or ``None`` for a person's email.

    Reasons, checked in this order: ``"bounce"`` (multipart/report delivery
    reports, MAILER-DAEMON/postmaster senders), ``"auto-submitted"``
    (Auto-Submitted other than "no", X-Auto-Response-Suppress All/OOF/AutoReply),
    ``"out-of-office reply"`` (X-Autoreply, X-Autorespond, Precedence auto_reply,
    or an out-of-office subject), ``"mailing list"`` (List-Id, List-Unsubscribe),
    ``"bulk precedence"`` (Precedence bulk/list/junk), ``"bulk mailer"`` (a known
    X-Mailer), ``"no-reply sender"``. Never raises.
    """
    header = parsed.header
    local = parsed.from_.email.rpartition("@")[0].lower() if parsed.from_ else ""
    content_type = (header("Content-Type") or "").lower()
    if content_type.startswith("multipart/report") or local in _BOUNCE_LOCALS:
        return "bounce"
    auto_submitted = (header("Auto-Submitted") or "").strip().lower()
    suppress = {v.strip().lower() for v in (header("X-Auto-Response-Suppress") or "").split(",")}
    if (auto_submitted and not auto_submitted.startswith("no")) or suppress & _SUPPRESS:
        # Senders set X-Auto-Response-Suppress on machine-generated mail.
        return "auto-submitted"
    precedence = (header("Precedence") or "").strip().lower()
    if (
        header("X-Autoreply") is not None
        or header("X-Autorespond") is not None
        or precedence == "auto_reply"
        or _OUT_OF_OFFICE.match(parsed.subject)
    ):
        return "out-of-office reply"
    if header("List-Id") is not None or header("List-Unsubscribe") is not None:
        return "mailing list"
    if precedence in _PRECEDENCE:
        return "bulk precedence"
    if _BULK_MAILERS.search(header("X-Mailer") or ""):
        return "bulk mailer"
    if _NO_REPLY_LOCAL.match(local):
        return "no-reply sender"
    return None
