"""What the user's mail servers said, as the precise ``InboxError`` (IMAP and SMTP alike).

The patterns read RFC 5530 response codes, RFC 3463 enhanced status codes and the
texts providers send, so throttling and a full mailbox get their own status instead of
a generic failure.
"""

from __future__ import annotations

import re
import socket
import ssl

from core.inboxes import Endpoint, InboxError
from core.types import InboxErrorCode, MailProtocol
from inbox_sync.detect import app_password_provider

# Response texts that mean "an app password is needed" (Gmail, Yahoo, iCloud, Outlook).
APP_PASSWORD = re.compile(r"application[-_ ]specific[-_ ]password|app[-_ ]?password", re.I)
# "Slow down / too many connections": RFC 5530 codes (Dovecot answers [LIMIT] when
# mail_max_userip_connections is reached), provider texts.
THROTTLED = re.compile(
    r"\[(THROTTLED|LIMIT|UNAVAILABLE|INUSE)\]|too many|rate limit|maximum number of connections",
    re.I)
# "The mailbox is full": RFC 5530 [OVERQUOTA], provider texts; in SMTP replies also the
# RFC 3463 enhanced status X.2.2 ("mailbox full").
OVERQUOTA = re.compile(r"\[OVERQUOTA\]|quota exceeded|over quota|mailbox (is )?full", re.I)
SMTP_MAILBOX_FULL = re.compile(r"^[45]\.2\.2\b")


# A server's reply is shown to the user only once it answered as a mail server (a NO to
# LOGIN, a 550 to RCPT: what they need to fix it), printable and at most this long.
# Anything sent before or instead of a valid greeting is never shown.
REPLY_CHARS = 300
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")


# Failures after which the connection is not used again, beyond core's
# CONNECTION_FAILURES: a server that broke a limit is cut off.
ENDS_CONNECTION = frozenset({InboxErrorCode.REMOTE_PROTOCOL_VIOLATION})


def connection_ended(exc: InboxError) -> bool:
    """Whether the connection is gone or must not be used again."""
    return exc.connection_failed or exc.code in ENDS_CONNECTION


def printable(text: str) -> str:
    """A server's reply as it may be shown: printable ASCII, cut to REPLY_CHARS."""
    text = _UNPRINTABLE.sub(" ", text).strip()
    return text if len(text) <= REPLY_CHARS else text[:REPLY_CHARS] + "..."


def error_text(exc: BaseException) -> str:
    """The server's words in an exception, decoded, through ``printable``."""
    return printable(" ".join(str(a.decode(errors="replace") if isinstance(a, bytes) else a)
                              for a in exc.args) or type(exc).__name__)


def violation_error(violation: BaseException, protocol: MailProtocol) -> InboxError:
    """A remote server broke one of the limits of a conversation (``limit`` says
    which): the connection was ended."""
    limit = getattr(violation, "limit", "protocol")
    detail = getattr(violation, "detail", "")
    return InboxError(InboxErrorCode.REMOTE_PROTOCOL_VIOLATION,
                      f"the {protocol.upper()} server broke the {limit} limit ({detail}); "
                      "the connection was closed", protocol=protocol)


def response_error(exc: BaseException, what: str) -> InboxError:
    """A NO/BAD answer of a connected IMAP server, as the precise InboxError."""
    text = error_text(exc)
    if THROTTLED.search(text):
        return InboxError(InboxErrorCode.THROTTLED,
                          f"the provider is throttling this mailbox: {text}")
    if OVERQUOTA.search(text):
        return InboxError(InboxErrorCode.MAILBOX_FULL, f"the mailbox is full: {text}")
    return InboxError(InboxErrorCode.IMAP_ERROR, f"{what} failed: {text}")


def address_error(exc: OSError, endpoint: Endpoint, protocol: MailProtocol) -> InboxError:
    """A failure to reach ``endpoint`` at all (DNS, TCP, TLS, time-out)."""
    where = f"{endpoint.host}:{endpoint.port}"
    label = protocol.upper()
    if isinstance(exc, socket.gaierror):
        return InboxError(InboxErrorCode.NAME_NOT_FOUND,
                          f"{label} server name not found: {endpoint.host}", protocol=protocol)
    if isinstance(exc, ConnectionRefusedError):
        return InboxError(InboxErrorCode.CONNECTION_REFUSED,
                          f"{label} server {where} refused the connection", protocol=protocol)
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return InboxError(InboxErrorCode.TLS_FAILURE,
                          f"TLS with the {label} server {where} failed: "
                          f"{getattr(exc, 'reason', None) or exc}", protocol=protocol)
    if isinstance(exc, TimeoutError):
        return InboxError(InboxErrorCode.TIMEOUT,
                          f"{label} server {where} did not answer in time", protocol=protocol)
    return InboxError(InboxErrorCode.UNREACHABLE, f"{label} server {where} unreachable: "
                      f"{exc.strerror or type(exc).__name__}", protocol=protocol)


def login_error(exc: BaseException, endpoint: Endpoint,
                protocol: MailProtocol = MailProtocol.IMAP, *, token: bool = False
                ) -> InboxError:
    """The server refused the login: say whether an app password would help, or whether
    it only asks us to come back later (too many connections). ``token``: the login was
    an OAuth access token (an expired one looks the same as an invalid one)."""
    text = error_text(exc)
    label = protocol.upper()
    if token and not THROTTLED.search(text):
        return InboxError(InboxErrorCode.AUTH_REJECTED,
                          f"the {label} server rejected the OAuth access token: {text}",
                          protocol=protocol)
    if APP_PASSWORD.search(text):
        return InboxError(InboxErrorCode.APP_PASSWORD_REQUIRED,
                          f"the {label} server requires an app password (create one in the "
                          f"account's security settings): {text}", protocol=protocol)
    if THROTTLED.search(text):
        return InboxError(InboxErrorCode.THROTTLED, f"the provider is throttling logins: {text}",
                          protocol=protocol)
    hint = (" (this provider requires an app password when two-step verification is on)"
            if app_password_provider(endpoint.host) else "")
    return InboxError(InboxErrorCode.AUTH_REJECTED,
                      f"the {label} server rejected the username or password{hint}: {text}",
                      protocol=protocol)
