"""OAuth 2.0 authorization code with PKCE (RFC 6749, RFC 7636) against inboxlog itself:
how a browser extension gets a user API token without the CLI, and gives it back.

Clients are public (an extension keeps no secret): PKCE with S256 is required, and the
redirect URI must be an extension's (``https://<id>.chromiumapp.org/...`` of Chrome's
``launchWebAuthFlow``, ``https://<id>.extensions.allizom.org/...`` of Firefox's) or a
loopback one (``http://127.0.0.1:PORT/...``, RFC 8252), so a code never goes to a web
site. A code is signed (the server's key), names its user, client, redirect URI and
challenge, lives ``CODE_FOR`` and is spent once: redeeming records its hash in
``web_links`` (purpose ``code``), whose unique key refuses a second redemption, on every
node sharing the database; rows of codes past any use are deleted by the next
redemption (``purge_spent_codes``) and by the periodic purge. The token it buys is
named after the client and keeps the code's hash: presenting a spent code again revokes
that token (RFC 6749 10.5; whoever replays a code may have stolen it, so the token it
bought is suspect), and a new password revokes every token of the user bought this way
(``revoke_granted_tokens``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts
from core.errors import CoreError
from core.storage.models import ApiToken, User, utcnow
from core.storage.models.web import WebLink

CODE_FOR = timedelta(minutes=1)
SCOPE = "log track"
CODE_PURPOSE = "code"
_EXTENSION_HOSTS = re.compile(
    r"[a-p]{32}\.chromiumapp\.org|[0-9a-f]{40}\.extensions\.allizom\.org")
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


class GrantError(CoreError):
    """An OAuth error; ``code`` is RFC 6749's (``invalid_request``, ``invalid_grant``...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class CodeReplayed(GrantError):
    """A spent code presented again, with its client, redirect URI and verifier: the
    caller refuses it and, in a transaction of its own (the refusal rolls back the
    current one), revokes what the code bought (``revoke_replayed``)."""

    def __init__(self) -> None:
        super().__init__("invalid_grant", "the code was used already")


@dataclass(frozen=True)
class Request:
    """A checked authorization request."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    state: str


def check_request(*, response_type: str, client_id: str, redirect_uri: str,
                  code_challenge: str, code_challenge_method: str, state: str) -> Request:
    """The request if it is one inboxlog grants; GrantError saying what is wrong.
    A bad redirect URI must be shown to the user, never redirected to."""
    check_redirect_uri(redirect_uri)
    if response_type != "code":
        raise GrantError("unsupported_response_type", "response_type must be code")
    if not client_id.strip() or len(client_id) > 100:
        raise GrantError("invalid_request", "client_id names the extension (1-100 chars)")
    if code_challenge_method != "S256" or not _CHALLENGE.fullmatch(code_challenge):
        raise GrantError("invalid_request", "PKCE is required: code_challenge (S256 of the "
                         "verifier, base64url) with code_challenge_method=S256")
    if len(state) > 500:
        raise GrantError("invalid_request", "state is at most 500 characters")
    return Request(client_id.strip(), redirect_uri, code_challenge, state)


def check_redirect_uri(uri: str) -> None:
    parts = urlsplit(uri)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1")
    extension = parts.scheme == "https" and _EXTENSION_HOSTS.fullmatch(parts.hostname or "")
    if len(uri) > 500 or parts.fragment or parts.username or not (loopback or extension):
        raise GrantError("invalid_request", "the redirect URI is not an extension's "
                         "(https://<id>.chromiumapp.org/, https://<id>.extensions.allizom"
                         ".org/) nor a loopback one (http://127.0.0.1:PORT/)")


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="inboxlog.extension-code")


def issue_code(secret: str, user: User, request: Request) -> str:
    """The code the redirect carries, once the user allowed ``request``."""
    return _serializer(secret).dumps({
        "u": user.id, "p": user.portal_id, "c": request.client_id,
        "r": request.redirect_uri, "x": request.code_challenge,
        "n": secrets.token_urlsafe(16)})


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def redeem(session: AsyncSession, secret: str, *, code: str, client_id: str,
                 redirect_uri: str, verifier: str,
                 now: datetime | None = None) -> tuple[ApiToken, str]:
    """Exchange a code for a new user API token (its secret returned once); GrantError
    ``invalid_grant`` for a code that is forged, expired, spent, or not this client's,
    redirect URI's or verifier's."""
    now = now or utcnow()
    try:
        claims = _serializer(secret).loads(code, max_age=int(CODE_FOR.total_seconds()))
    except BadSignature:
        raise GrantError("invalid_grant", "the code is not valid, or expired") from None
    if not _VERIFIER.fullmatch(verifier):
        raise GrantError("invalid_request", "code_verifier must be 43-128 characters")
    if (claims.get("c") != client_id or claims.get("r") != redirect_uri
            or not hmac.compare_digest(str(claims.get("x")), _s256(verifier))):
        raise GrantError("invalid_grant", "the code was issued to another client, redirect "
                         "URI or code challenge")
    user = await session.get(User, claims.get("u"))
    if user is None or user.portal_id != claims.get("p"):
        raise GrantError("invalid_grant", "the code's user is gone")
    await purge_spent_codes(session, now)
    code_hash = accounts.hash_token(code)
    # Checked only now, with the verifier matched: a code seen in a log or a referrer,
    # replayed without the verifier, must not let its finder revoke the user's token.
    if await session.scalar(select(WebLink.id).where(WebLink.token_hash == code_hash)):
        raise CodeReplayed
    # Two redemptions racing: the second fails on the unique hash (its transaction rolls
    # back) once the first committed.
    session.add(WebLink(portal_id=user.portal_id, purpose=CODE_PURPOSE, user_id=user.id,
                        token_hash=code_hash, created_at=now,
                        expires_at=now + CODE_FOR, used_at=now))
    try:
        await session.flush()
    except IntegrityError:
        raise CodeReplayed from None
    record, secret = await accounts.issue_token(session, user, name=f"extension {client_id}")
    record.grant_code_hash = code_hash
    await session.flush()
    return record, secret


async def revoke_replayed(session: AsyncSession, code: str, *,
                          now: datetime | None = None) -> int:
    """Revoke the token ``code`` bought (after ``CodeReplayed``); how many were live."""
    done = await session.execute(update(ApiToken).where(
        ApiToken.grant_code_hash == accounts.hash_token(code), ApiToken.revoked_at.is_(None),
    ).values(revoked_at=now or utcnow()))
    return int(getattr(done, "rowcount", 0) or 0)


async def revoke_granted_tokens(session: AsyncSession, user_id: int, *,
                                now: datetime | None = None) -> int:
    """Revoke every live token the extension's sign-in issued to ``user_id`` (a new
    password: whoever knew the old one may have let an extension of theirs in); tokens
    made by the CLI or on the tokens page stay. How many went."""
    done = await session.execute(update(ApiToken).where(
        ApiToken.user_id == user_id, ApiToken.grant_code_hash.is_not(None),
        ApiToken.revoked_at.is_(None)).values(revoked_at=now or utcnow()))
    return int(getattr(done, "rowcount", 0) or 0)


async def purge_spent_codes(session: AsyncSession, now: datetime | None = None) -> int:
    """Delete the rows of spent codes that can no longer be presented (each redemption
    does it first, so the rows never pile up); how many went. A row is kept a second
    lifetime past its expiry: the code's own age check counts whole seconds, and a row
    must outlive the last moment its code is accepted."""
    now = now or utcnow()
    gone = await session.execute(delete(WebLink).where(
        WebLink.purpose == CODE_PURPOSE, WebLink.expires_at < now - CODE_FOR))
    return int(getattr(gone, "rowcount", 0) or 0)


async def revoke(session: AsyncSession, token: str, *, now: datetime | None = None) -> None:
    """RFC 7009: revoke a user token given by whoever holds it (unknown: nothing)."""
    found = await accounts.token_owner(session, token)
    if found is not None and found.user_id is not None:
        found.revoked_at = now or utcnow()
