"""Tracked sends: signed pixel and link tokens and HTML rewriting. Telling people from
machines in the opens and clicks they get is ``core.tracking_verdicts``.

Tokens are signed with itsdangerous. The pixel token is ``<send token>.<signature>``,
so the pipeline can find the tracked send from a copy's HTML without the secret. A
click token carries the original URL itself, signed: the redirect needs no database,
and a tampered or unknown token can never redirect anywhere.
"""

from __future__ import annotations

import html as html_lib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, Signer, URLSafeSerializer

# Classification lives in core.tracking_verdicts; these two are the adapters' contract.
from core.tracking_verdicts import Counts as Counts
from core.tracking_verdicts import Hit as Hit

_OPEN_SALT = "inboxlog.open"
_CLICK_SALT = "inboxlog.click"
SEND_TOKEN_PATTERN = r"[A-Za-z0-9_-]{20,64}"
_PIXEL_IN_HTML = re.compile(rf"/t/o/({SEND_TOKEN_PATTERN})\.[A-Za-z0-9_-]+")
# No pattern over HTML may scan past the next tag from where it starts (a tag holds no
# "<"): tried from every "<a" or "<img" of a page without a ">", or every "href" of one
# long attribute value, a scan to the end of the page would be quadratic time.
_HREF = re.compile(
    r"""(<a\b[^<>]*?\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)


def new_send_token() -> str:
    return secrets.token_urlsafe(18)


class TokenSigner:
    """Signs and verifies the tokens of pixel and click URLs with the server secret."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a secret key is required to sign tracking tokens")
        self._open = Signer(secret, salt=_OPEN_SALT)
        self._click = URLSafeSerializer(secret, salt=_CLICK_SALT)

    def open_token(self, send_token: str) -> str:
        return self._open.sign(send_token).decode()

    def verify_open(self, token: str) -> str | None:
        """The send token inside a pixel token, or None when it is not genuine."""
        try:
            value = self._open.unsign(token).decode()
        except (BadSignature, UnicodeDecodeError):
            return None
        return value if re.fullmatch(SEND_TOKEN_PATTERN, value) else None

    def click_token(self, send_token: str, position: int, url: str) -> str:
        return self._click.dumps([send_token, position, url])

    def verify_click(self, token: str) -> tuple[str, int, str] | None:
        """(send token, link position, original URL), or None when not genuine."""
        try:
            value: Any = self._click.loads(token)
        except (BadSignature, ValueError, UnicodeDecodeError):
            return None
        if (not isinstance(value, list) or len(value) != 3 or not isinstance(value[0], str)
                or not isinstance(value[1], int) or not isinstance(value[2], str)
                or not value[2].lower().startswith(("http://", "https://"))):
            return None
        return value[0], value[1], value[2]


_IMG_TAG = re.compile(r"<img\b[^<>]*+>", re.IGNORECASE)
_OWN_PIXEL_URL = re.compile(rf"/t/o/{SEND_TOKEN_PATTERN}\.[A-Za-z0-9_-]+")
# An href and its whole unquoted-or-opening-quote value, always matched: no start fails.
_HREF_VALUE = re.compile(r"""(\bhref\s*=\s*["']?)([^"'\s>]*+)""", re.IGNORECASE)
_OWN_LINK_IN_VALUE = re.compile(r".*/t/c/([A-Za-z0-9_.-]+)", re.DOTALL)
# Only reads the URL back out of a click token for display; never used to redirect.
_UNVERIFIED = URLSafeSerializer("not-a-secret", salt=_CLICK_SALT)


def strip_tracking(html: str) -> str:
    """A logged copy of a tracked email without inboxlog's pixel, and with its links
    pointing at their original URLs again: a CRM user reading the timeline must not
    count as the recipient opening or clicking."""
    def unwrap(match: re.Match[str]) -> str:
        # The last click token in the value, as far as its characters go, is replaced.
        link = _OWN_LINK_IN_VALUE.match(match.group(2))
        if link is None:
            return match.group(0)
        try:
            _, payload = _UNVERIFIED.loads_unsafe(link.group(1))
        except Exception:
            return match.group(0)
        if (isinstance(payload, list) and len(payload) == 3 and isinstance(payload[2], str)
                and payload[2].lower().startswith(("http://", "https://"))):
            return (match.group(1) + html_lib.escape(payload[2], quote=True)
                    + match.group(2)[link.end():])
        return match.group(0)

    def unpixel(match: re.Match[str]) -> str:
        return "" if _OWN_PIXEL_URL.search(match.group(0)) else match.group(0)

    return _HREF_VALUE.sub(unwrap, _IMG_TAG.sub(unpixel, html))


def send_tokens_in_html(html: str) -> list[str]:
    """The tracked-send tokens of the pixels in an email's HTML, quoted history included."""
    return list(dict.fromkeys(_PIXEL_IN_HTML.findall(html)))


@dataclass(frozen=True)
class Rewritten:
    html: str
    links: list[str]  # original URLs, by position


def rewrite_html(
    html: str, *, base_url: str, send_token: str, signer: TokenSigner, track_opens: bool,
    track_clicks: bool,
) -> Rewritten:
    """Point every http(s) link at the click redirect and append the open pixel."""
    links: list[str] = []
    base = base_url.rstrip("/")

    def replace(match: re.Match[str]) -> str:
        raw = next(g for g in match.groups()[1:] if g is not None)
        url = html_lib.unescape(raw).strip()
        if not url.lower().startswith(("http://", "https://")):
            return match.group(0)
        links.append(url)
        token = signer.click_token(send_token, len(links) - 1, url)
        return f'{match.group(1)}"{base}/t/c/{token}"'

    result = _HREF.sub(replace, html) if track_clicks else html
    if track_opens:
        pixel = (f'<img src="{base}/t/o/{signer.open_token(send_token)}" width="1" height="1" '
                 'alt="" style="display:block;border:0;width:1px;height:1px">')
        close = result.lower().rfind("</body>")
        result = result[:close] + pixel + result[close:] if close >= 0 else result + pixel
    return Rewritten(result, links)
