"""IMAP and SMTP settings from an email address: the big providers, then RFC 6186 SRV.

Returns None when neither knows the domain: the user then gives the settings by hand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import dns.asyncresolver
import dns.exception
import dns.resolver

from core.inboxes import Endpoint
from core.types import MailSecurity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detected:
    imap: Endpoint
    smtp: Endpoint
    how: Literal["provider", "srv"]  # the provider table, or RFC 6186 SRV records
    app_password_hint: bool = False  # the provider wants an app password with 2FA on


def _pair(imap_host: str, smtp_host: str, smtp_port: int = 465,
          app_password: bool = False) -> Detected:
    smtp_security = MailSecurity.SSL if smtp_port == 465 else MailSecurity.STARTTLS
    return Detected(Endpoint(imap_host, 993, MailSecurity.SSL),
                    Endpoint(smtp_host, smtp_port, smtp_security), "provider", app_password)


_GOOGLE = _pair("imap.gmail.com", "smtp.gmail.com", 465, True)
_MICROSOFT = _pair("outlook.office365.com", "smtp.office365.com", 587)
_YAHOO = _pair("imap.mail.yahoo.com", "smtp.mail.yahoo.com", 465, True)
_APPLE = _pair("imap.mail.me.com", "smtp.mail.me.com", 587, True)
_GMX = _pair("imap.gmx.net", "mail.gmx.net", 587)
_YANDEX = _pair("imap.yandex.com", "smtp.yandex.com", 465, True)

PROVIDERS: dict[str, Detected] = {
    "gmail.com": _GOOGLE, "googlemail.com": _GOOGLE,
    "outlook.com": _MICROSOFT, "hotmail.com": _MICROSOFT, "live.com": _MICROSOFT,
    "msn.com": _MICROSOFT, "hotmail.co.uk": _MICROSOFT, "outlook.fr": _MICROSOFT,
    "yahoo.com": _YAHOO, "yahoo.co.uk": _YAHOO, "yahoo.fr": _YAHOO, "ymail.com": _YAHOO,
    "icloud.com": _APPLE, "me.com": _APPLE, "mac.com": _APPLE,
    "aol.com": _pair("imap.aol.com", "smtp.aol.com", 465, True),
    "gmx.de": _GMX, "gmx.net": _GMX, "gmx.com": _GMX,
    "web.de": _pair("imap.web.de", "smtp.web.de", 587),
    "yandex.ru": _YANDEX, "yandex.com": _YANDEX,
    "zoho.com": _pair("imap.zoho.com", "smtp.zoho.com", 465),
    "fastmail.com": _pair("imap.fastmail.com", "smtp.fastmail.com", 465),
    "mail.ru": _pair("imap.mail.ru", "smtp.mail.ru", 465, True),
}
# Only providers' public servers: Proton Mail, say, is reached through a Bridge on the
# user's own machine (127.0.0.1), which is no server of theirs here but of the host.

# RFC 6186 service names, most secure first, with the security each implies.
_IMAP_SRV = (("_imaps._tcp", MailSecurity.SSL), ("_imap._tcp", MailSecurity.STARTTLS))
_SMTP_SRV = (("_submissions._tcp", MailSecurity.SSL),
             ("_submission._tcp", MailSecurity.STARTTLS))


def app_password_provider(imap_host: str) -> bool:
    """Whether this IMAP host belongs to a provider known to require app passwords for
    IMAP when two-step verification is on."""
    host = imap_host.lower().rstrip(".")
    return any(known.app_password_hint and known.imap.host == host
               for known in PROVIDERS.values())


async def _srv(resolver: dns.asyncresolver.Resolver, domain: str,
               services: tuple[tuple[str, MailSecurity], ...]) -> Endpoint | None:
    for service, security in services:
        try:
            answer = await resolver.resolve(f"{service}.{domain}", "SRV")
        except (dns.exception.DNSException, OSError):
            continue
        records = sorted(answer, key=lambda r: (r.priority, -r.weight))
        for record in records:
            target = record.target.to_text().rstrip(".")
            if target:  # "." means the service is decidedly not offered
                return Endpoint(target, int(record.port), security)
    return None


async def detect(address: str, *, timeout: float = 3.0) -> Detected | None:
    """Settings for ``address`` from the provider table, else from SRV records. What
    SRV records name is not trusted: the connection is checked like any other
    (``outbound``), so a target on a private address is refused there."""
    domain = address.rpartition("@")[2].lower().rstrip(".")
    if domain in PROVIDERS:
        return PROVIDERS[domain]
    try:
        resolver = dns.asyncresolver.Resolver()
    except (dns.resolver.NoResolverConfiguration, OSError):
        return None
    resolver.lifetime = timeout
    imap_srv = await _srv(resolver, domain, _IMAP_SRV)
    smtp_srv = await _srv(resolver, domain, _SMTP_SRV)
    if imap_srv is None or smtp_srv is None:
        log.info("no RFC 6186 records for %s", domain)
        return None
    return Detected(imap_srv, smtp_srv, "srv")
