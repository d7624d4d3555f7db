"""Every SMTP reply inboxlog gives, with RFC 3463 enhanced status codes."""

from __future__ import annotations

from core.pipeline import MAX_MESSAGE_BYTES

RCPT_OK = "250 2.1.5 Recipient OK"
UNKNOWN_RECIPIENT = "550 5.1.1 No such logging address"
# The new address is never named: whoever knew the old one may be why it was rotated.
ADDRESS_REPLACED = "550 5.1.1 This logging address was replaced; ask your admin for the new one"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
TRANSIENT = "451 4.3.0 Temporary failure, please try again later"
TOO_LARGE = f"552 5.3.4 Message exceeds the size limit of {MAX_MESSAGE_BYTES} bytes"
LINE_TOO_LONG = "500 5.5.2 Line too long"


def logged(email_ids: list[int]) -> str:
    return "250 2.0.0 logged " + ", ".join(str(i) for i in email_ids)


def not_logged(reason: str) -> str:
    return f"250 2.0.0 not logged: {reason}"


def sender_not_allowed(reason: str) -> str:
    return f"550 5.7.1 {reason}"


def too_large(reason: str) -> str:
    return f"552 5.3.4 {reason}"


def one_line(text: str) -> str:
    """A reply text made safe for a single SMTP line (no CR/LF, bounded length)."""
    return " ".join(text.split())[:400]
