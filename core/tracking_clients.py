"""Which mail client, proxy, browser or bot a user agent names.

Browsers, operating systems and bots come from ua-parser (the uap-core rules, kept up to
date upstream); mail clients and mail proxies that uap-core does not name, or names
too broadly, are recognised first by the few patterns below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import ua_parser

from core.types import ClientKind


@dataclass(frozen=True)
class Client:
    family: str  # for people: "Outlook desktop (Windows)", "Chrome on Windows"
    kind: ClientKind


_GMAIL = re.compile(r"GoogleImageProxy", re.IGNORECASE)
_PREFETCH_PROXIES = (
    (re.compile(r"YahooMailProxy|Yahoo Mail Proxy", re.IGNORECASE), "Yahoo Mail image proxy"),
    (re.compile(r"Shortwave Image Fetcher", re.IGNORECASE), "Shortwave image fetcher"),
    (re.compile(r"\bImageProxy\b", re.IGNORECASE), "image proxy"),
)
# Security gateways and tools; "ms-office" is Outlook desktop, never a scanner.
_SCANNERS = re.compile(
    r"proofpoint|mimecast|barracuda|safelinks|safe links|microsoft office protection|"
    r"forcepoint|symantec|messagelabs|trend ?micro|sophos|fireeye|ironport|zscaler|"
    r"\bbot\b|spider|crawler|curl/|wget/|python-requests|python-urllib|aiohttp|"
    r"go-http-client|headlesschrome|phantomjs|okhttp|java/|libwww|apache-httpclient|"
    r"slackbot|facebookexternalhit|link preview",
    re.IGNORECASE,
)
_OUTLOOK = re.compile(
    r"ms-office|MSOffice \d|Microsoft Outlook|Microsoft Office Outlook|MacOutlook|"
    r"^Outlook-(?:iOS|Android)|Microsoft Office/\d", re.IGNORECASE)
_MAIL_PROGRAMS = (
    (re.compile(r"Thunderbird|Icedove", re.IGNORECASE), "Thunderbird"),
    (re.compile(r"^Superhuman|Superhuman/", re.IGNORECASE), "Superhuman"),
    (re.compile(r"YahooMobileMail|Yahoo%20Mail|jp\.co\.yahoo\.ymail"), "Yahoo Mail app"),
    (re.compile(r"Airmail"), "Airmail"),
    (re.compile(r"eM ?Client"), "eM Client"),
    (re.compile(r"Mailbird/"), "Mailbird"),
    (re.compile(r"Postbox"), "Postbox"),
    (re.compile(r"^Mail/\d.*CFNetwork"), "Apple Mail (Mac)"),
)
# Android mail apps (Gmail, Samsung Email, Outlook) render mail in a system WebView.
_ANDROID_WEBVIEW = re.compile(r"Android[^)]*; wv\)")
_SAMSUNG_DEVICE = re.compile(r"; (?:SAMSUNG )?SM-[A-Z0-9]+")


def _outlook(agent: str) -> str:
    if "Macintosh" in agent or "Mac OS" in agent:
        return "Outlook for Mac"
    if "iOS" in agent or "iPhone" in agent:
        return "Outlook for iOS"
    if "Android" in agent:
        return "Outlook for Android"
    return "Outlook desktop (Windows)"


# Longer agents are read (and stored, core.storage.models.TrackingHit) to here: a request can
# carry 16 KB of agent, which costs some patterns above time quadratic in its length.
MAX_AGENT = 1000


def identify(agent: str) -> Client:
    """The client behind a user agent (its first MAX_AGENT characters)."""
    return _identify(agent.strip()[:MAX_AGENT])


@lru_cache(maxsize=4096)
def _identify(agent: str) -> Client:
    """``identify``, cached: a campaign's hits repeat few agents."""
    if not agent:
        return Client("no user agent", ClientKind.NONE)
    if agent == "Mozilla/5.0":
        return Client("bare agent (Mozilla/5.0)", ClientKind.BARE)
    if _GMAIL.search(agent):
        return Client("Gmail (image proxy)", ClientKind.GMAIL_PROXY)
    for pattern, family in _PREFETCH_PROXIES:
        if pattern.search(agent):
            return Client(family, ClientKind.PREFETCH_PROXY)
    if _OUTLOOK.search(agent):
        return Client(_outlook(agent), ClientKind.MAIL)
    for pattern, family in _MAIL_PROGRAMS:
        if pattern.search(agent):
            return Client(family, ClientKind.MAIL)
    parsed = ua_parser.parse(agent)
    browser = parsed.user_agent.family if parsed.user_agent else ""
    system = parsed.os.family if parsed.os else ""
    if _SCANNERS.search(agent) or (parsed.device and parsed.device.family == "Spider"):
        known = browser and browser != "Other"
        return Client(f"bot or scanner ({browser})" if known else "bot or scanner",
                      ClientKind.BOT)
    if browser == "Outlook":
        return Client(_outlook(agent), ClientKind.MAIL)
    if browser == "Apple Mail":
        return Client("Apple Mail (Mac)", ClientKind.MAIL)
    if browser == "Mobile Safari UI/WKWebView" and system == "iOS":
        # No "Safari" token: Apple Mail on iPhone or iPad, or another app's web view.
        return Client("Apple Mail or a mail app (iOS)", ClientKind.MAIL)
    if _ANDROID_WEBVIEW.search(agent):
        return Client("Samsung Email or a mail app (Android)" if _SAMSUNG_DEVICE.search(agent)
                      else "a mail app (Android)", ClientKind.MAIL)
    if browser and browser != "Other":
        return Client(f"{browser} on {system}" if system and system != "Other" else browser,
                      ClientKind.BROWSER)
    return Client("unknown agent", ClientKind.UNKNOWN)
