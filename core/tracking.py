"""Tracked sends: signed pixel and link tokens and HTML rewriting. Telling people from
machines in the opens and clicks they get is ``core.tracking_verdicts``.

Tokens are signed with itsdangerous, under a key of their portal's: HKDF-SHA256 of the
server secret with the portal id (as ``core.credentials`` derives its key), so no other
secret is kept and a token minted for one portal never verifies for another. The pixel
token is ``<send token>.<portal id>.<signature>``, so the pipeline can find the tracked
send from a copy's HTML without the secret. A click token is ``<portal id>.<payload>.
<signature>``, the payload the send token, the link's position and its original URL (so
a logged copy gets its links back without the database). A token alone never
redirects: the click endpoint also wants its send stored, not deleted, in that portal,
with that URL at that position (``extension_api.endpoints.tracking``).

Tokens of the first format (``<send token>.<signature>`` and ``<payload>.<signature>``,
under one server-wide key) are in mail already sent: they still verify, with no portal.
"""

from __future__ import annotations

import html as html_lib
import re
import secrets
import zlib
from dataclasses import dataclass
from typing import Any, NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadPayload, BadSignature, Serializer, Signer, URLSafeSerializer
from itsdangerous.encoding import base64_decode

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


_PORTAL_KEY_SALT = b"inboxlog tracking"
_MAX_PORTAL_ID = 2**63 - 1


def _portal_id(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > 19 or text != str(int(text)):
        return None
    value = int(text)
    return value if 0 < value <= _MAX_PORTAL_ID else None


def split_click_token(token: str) -> tuple[int | None, str]:
    """(portal id, the itsdangerous part) of a click token; no portal for the first format
    (whose payload is base64 of JSON, never digits and a dot)."""
    head, dot, rest = token.partition(".")
    portal = _portal_id(head) if dot else None
    return (portal, rest) if portal is not None else (None, token)


class ClickToken(NamedTuple):
    send_token: str
    position: int
    url: str
    portal_id: int | None  # None: a token of the first format, under the server-wide key


def _click_payload(value: Any) -> tuple[str, int, str] | None:
    if (not isinstance(value, list) or len(value) != 3 or not isinstance(value[0], str)
            or not isinstance(value[1], int) or isinstance(value[1], bool)
            or not isinstance(value[2], str) or not is_web_url(value[2])):
        return None
    return value[0], value[1], value[2]


def is_web_url(url: str) -> bool:
    """Only these are ever rewritten, shown back or redirected to."""
    return url.lower().startswith(("http://", "https://"))


class TokenSigner:
    """Signs and verifies the tokens of pixel and click URLs, per portal, with keys derived
    from the server secret."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a secret key is required to sign tracking tokens")
        self._secret = secret.encode()
        self._keys: dict[int, tuple[Signer, URLSafeSerializer]] = {}
        # The first format's server-wide key: verified only, never signed with again.
        self._legacy_open = Signer(secret, salt=_OPEN_SALT)
        self._legacy_click = URLSafeSerializer(secret, salt=_CLICK_SALT)

    def _portal(self, portal_id: int) -> tuple[Signer, URLSafeSerializer]:
        found = self._keys.get(portal_id)
        if found is None:
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_PORTAL_KEY_SALT,
                       info=f"tracking links of portal {portal_id} v2".encode()).derive(
                self._secret)
            found = (Signer(key, salt=_OPEN_SALT), URLSafeSerializer(key, salt=_CLICK_SALT))
            if len(self._keys) >= 100_000:  # bounded: portals are far fewer
                self._keys.clear()
            self._keys[portal_id] = found
        return found

    def open_token(self, send_token: str, *, portal_id: int) -> str:
        return self._portal(portal_id)[0].sign(f"{send_token}.{portal_id}").decode()

    def verify_open(self, token: str) -> str | None:
        """The send token inside a pixel token, or None when it is not genuine."""
        parts = token.split(".")
        try:
            if len(parts) == 3 and (portal := _portal_id(parts[1])) is not None:
                value = self._portal(portal)[0].unsign(token).decode().partition(".")[0]
            elif len(parts) == 2:
                value = self._legacy_open.unsign(token).decode()
            else:
                return None
        except (BadSignature, UnicodeDecodeError):
            return None
        return value if re.fullmatch(SEND_TOKEN_PATTERN, value) else None

    def click_token(self, send_token: str, position: int, url: str, *, portal_id: int) -> str:
        return f"{portal_id}." + self._portal(portal_id)[1].dumps([send_token, position, url])

    def verify_click(self, token: str) -> ClickToken | None:
        """What a genuine click token says, or None when it is not genuine."""
        portal, signed = split_click_token(token)
        serializer = self._legacy_click if portal is None else self._portal(portal)[1]
        try:
            payload = _click_payload(serializer.loads(signed))
        except (BadSignature, ValueError, UnicodeDecodeError):
            return None
        return None if payload is None else ClickToken(*payload, portal)


_IMG_TAG = re.compile(r"<img\b[^<>]*+>", re.IGNORECASE)
_OWN_PIXEL_URL = re.compile(rf"/t/o/{SEND_TOKEN_PATTERN}\.[A-Za-z0-9_-]+")
# An href and its whole unquoted-or-opening-quote value, always matched: no start fails.
_HREF_VALUE = re.compile(r"""(\bhref\s*=\s*["']?)([^"'\s>]*+)""", re.IGNORECASE)
_OWN_LINK_IN_VALUE = re.compile(r".*/t/c/([A-Za-z0-9_.-]+)", re.DOTALL)
MAX_CLICK_PAYLOAD = 64 * 1024  # inflated JSON of one click token: a URL is far shorter


class _BoundedPayloads(URLSafeSerializer):
    """Inflates a compressed payload to MAX_CLICK_PAYLOAD bytes at most. Without the
    signature check, a payload is anyone's: 130 KB of zlib can inflate to 100 MB."""

    def load_payload(self, payload: bytes, *args: Any, **kwargs: Any) -> Any:
        if not payload.startswith(b"."):
            return super().load_payload(payload, *args, **kwargs)
        try:
            inflater = zlib.decompressobj()
            data = inflater.decompress(base64_decode(payload[1:]), MAX_CLICK_PAYLOAD)
        except Exception as exc:
            raise BadPayload("not a click payload", original_error=exc) from exc
        if not inflater.eof:
            raise BadPayload(f"click payload over {MAX_CLICK_PAYLOAD} bytes")
        # The JSON step of the serializer, past URLSafeSerializerMixin's own inflating.
        return Serializer.load_payload(self, data, *args, **kwargs)


# Only reads the URL back out of a click token for display; never used to redirect.
_UNVERIFIED = _BoundedPayloads("not-a-secret", salt=_CLICK_SALT)


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
            _, payload = _UNVERIFIED.loads_unsafe(split_click_token(link.group(1))[1])
        except Exception:
            return match.group(0)
        if (click := _click_payload(payload)) is not None:
            return (match.group(1) + html_lib.escape(click[2], quote=True)
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
    html: str, *, base_url: str, send_token: str, portal_id: int, signer: TokenSigner,
    track_opens: bool, track_clicks: bool,
) -> Rewritten:
    """Point every http(s) link at the click redirect and append the open pixel."""
    links: list[str] = []
    base = base_url.rstrip("/")

    def replace(match: re.Match[str]) -> str:
        raw = next(g for g in match.groups()[1:] if g is not None)
        url = html_lib.unescape(raw).strip()
        if not is_web_url(url):
            return match.group(0)
        links.append(url)
        token = signer.click_token(send_token, len(links) - 1, url, portal_id=portal_id)
        return f'{match.group(1)}"{base}/t/c/{token}"'

    result = _HREF.sub(replace, html) if track_clicks else html
    if track_opens:
        token = signer.open_token(send_token, portal_id=portal_id)
        pixel = (f'<img src="{base}/t/o/{token}" width="1" height="1" '
                 'alt="" style="display:block;border:0;width:1px;height:1px">')
        close = result.lower().rfind("</body>")
        result = result[:close] + pixel + result[close:] if close >= 0 else result + pixel
    return Rewritten(result, links)
