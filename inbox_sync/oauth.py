"""OAuth 2.0 for connected inboxes: the authorization request (code + PKCE S256), the
code exchange, refresh (with rotation), revocation and the account's address, through
Authlib's OAuth 2.0 client; and ``TokenKeeper``, which hands IMAP and SMTP a fresh
access token and stores what the provider rotates.

Every call to a provider goes through ``CheckedTransport``: the host is resolved once,
each address checked (public, on 443; or allowed by ``--allow-oauth-hosts``) and the
connection made to that address with TLS verifying the name, as ``outbound`` does for
mail servers. Redirects are not followed. Tokens are never logged nor put in errors.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx2
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.integrations.httpx_client import OAuthError as AuthlibError

from core.credentials import CredentialBox
from core.inboxes import InboxError
from core.oauth import REFRESH_MARGIN_SECONDS, OAuthError, OAuthProvider, has_scopes
from core.runtime import Runtime
from core.storage.models import Inbox
from core.types import InboxAuth, InboxErrorCode
from inbox_sync import pinned
from inbox_sync.imap import Bearer
from inbox_sync.outbound import Destinations

log = logging.getLogger(__name__)

HTTPS_PORTS = frozenset({443})
# Token endpoint answers that mean "try again later" (RFC 6749 5.2, 4.1.2.1).
TEMPORARY = ("temporarily_unavailable", "server_error")


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: float  # epoch seconds; 0: unknown
    scope: str | None = None

    def __repr__(self) -> str:  # never a token in a log line or a traceback
        return f"Tokens(expires_at={self.expires_at}, scope={self.scope!r})"

    def dumps(self) -> str:
        return json.dumps({"access_token": self.access_token,
                           "refresh_token": self.refresh_token,
                           "expires_at": self.expires_at, "scope": self.scope})

    @classmethod
    def loads(cls, text: str) -> Tokens:
        data = json.loads(text)
        return cls(data["access_token"], data.get("refresh_token") or "",
                   float(data.get("expires_at") or 0), data.get("scope"))

    def fresh(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return not self.expires_at or self.expires_at - now > REFRESH_MARGIN_SECONDS


class CheckedTransport(pinned.PinnedTransport):
    """Connects only to allowed addresses of the URL's host (``inbox_sync.pinned``)."""

    def __init__(self, destinations: Destinations, verify: ssl.SSLContext | bool = True,
                 timeout: float = 30) -> None:
        super().__init__(destinations.for_ports(HTTPS_PORTS),
                         httpx2.AsyncHTTPTransport(verify=verify, retries=0))
        self.timeout = timeout

    def refused(self, host: str, port: int, error: InboxError) -> Exception:
        if error.code == InboxErrorCode.NAME_NOT_FOUND:
            return OAuthError(InboxErrorCode.PROVIDER_UNAVAILABLE,
                              f"the authorization server {host} is not found")
        return OAuthError(InboxErrorCode.DESTINATION_NOT_ALLOWED, (
            f"the authorization server {host}:{port} is not an allowed destination: "
            "inboxlog calls only public addresses on port 443, unless the operator "
            "allows more (--allow-oauth-hosts)"))


def _claims(id_token: str) -> dict[str, Any]:
    """The claims of an ID token received straight from the token endpoint over TLS:
    OpenID Connect Core 3.1.3.7 (6) lets the TLS server check stand for the signature
    check then; ``aud`` is still checked by the caller."""
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def _raise_for_server_error(response: httpx2.Response) -> httpx2.Response:
    if response.status_code >= 500:
        raise OAuthError(InboxErrorCode.PROVIDER_UNAVAILABLE, "the authorization server answered "
                         f"{response.status_code}; try again later")
    return response


class OAuthClient:
    """The calls to the providers' endpoints. Raises ``core.oauth.OAuthError``."""

    def __init__(self, redirect_uri: str, destinations: Destinations,
                 verify: ssl.SSLContext | bool = True, timeout: float = 30) -> None:
        self.redirect_uri, self.timeout = redirect_uri, timeout
        self.destinations, self.verify = destinations, verify

    def _client(self, provider: OAuthProvider) -> AsyncOAuth2Client:
        client = AsyncOAuth2Client(
            provider.client_id, provider.client_secret or None,
            # Google and Microsoft take client_secret_post; a public client has none.
            token_endpoint_auth_method=("client_secret_post" if provider.client_secret
                                        else "none"),
            scope=" ".join(provider.scopes), redirect_uri=self.redirect_uri,
            code_challenge_method="S256", timeout=self.timeout,
            transport=CheckedTransport(self.destinations, self.verify, self.timeout))
        for hook in ("access_token_response", "refresh_token_response"):
            client.register_compliance_hook(hook, _raise_for_server_error)
        return client

    def authorization_url(self, provider: OAuthProvider, state: str,
                          code_verifier: str) -> str:
        client = self._client(provider)
        url, _state = client.create_authorization_url(
            provider.authorize_url, state=state, code_verifier=code_verifier,
            **provider.extra_authorize_params)
        return str(url)

    async def _call(self, provider: OAuthProvider, what: str, call: Any) -> Any:
        try:
            return await call
        except OAuthError:
            raise
        except AuthlibError as exc:
            error = exc.error or "error"
            if error == "invalid_grant":
                raise OAuthError(InboxErrorCode.OAUTH_REVOKED, f"{provider.name} refused the "
                                 f"grant ({error}): it was revoked, the password changed or "
                                 "consent was withdrawn; connect the inbox again") from None
            if error == "invalid_scope":
                raise OAuthError(InboxErrorCode.OAUTH_SCOPE_MISSING,
                                 f"{provider.name} refused the scopes ({error})") from None
            code = (InboxErrorCode.PROVIDER_UNAVAILABLE if error in TEMPORARY
                    else InboxErrorCode.OAUTH_FAILED)
            raise OAuthError(code, f"{provider.name} {what} failed: {error}") from None
        except (httpx2.HTTPError, OSError, ValueError) as exc:
            raise OAuthError(InboxErrorCode.PROVIDER_UNAVAILABLE, f"{provider.name} {what} "
                             "failed: the authorization server could not be reached "
                             f"({type(exc).__name__})") from None

    def _tokens(self, provider: OAuthProvider, token: dict[str, Any],
                refresh_token: str = "") -> Tokens:
        if not token.get("access_token"):
            raise OAuthError(InboxErrorCode.PROVIDER_UNAVAILABLE,
                             f"{provider.name} answered without an access token")
        scope = token.get("scope")
        if not has_scopes(scope if isinstance(scope, str) else None,
                          provider.required_scopes):
            raise OAuthError(InboxErrorCode.OAUTH_SCOPE_MISSING, (
                f"{provider.name} did not grant {' '.join(provider.required_scopes)} "
                f"(granted: {scope}); connect again and allow mail access"))
        expires_at = token.get("expires_at") or (
            time.time() + float(token["expires_in"]) if token.get("expires_in") else 0)
        return Tokens(str(token["access_token"]),
                      str(token.get("refresh_token") or refresh_token),
                      float(expires_at), scope if isinstance(scope, str) else None)

    async def exchange(self, provider: OAuthProvider, code: str,
                       code_verifier: str) -> tuple[Tokens, dict[str, Any]]:
        """The tokens for an authorization code, and the ID token's claims (if any)."""
        async with self._client(provider) as client:
            token = await self._call(provider, "code exchange", client.fetch_token(
                provider.token_url, grant_type="authorization_code", code=code,
                code_verifier=code_verifier))
            tokens = self._tokens(provider, token)
            claims = _claims(str(token.get("id_token") or ""))
            if claims and claims.get("aud") not in (provider.client_id, [provider.client_id]):
                claims = {}
            if provider.userinfo_url and not claims.get("email"):
                response = await self._call(provider, "userinfo", client.get(
                    provider.userinfo_url,
                    headers={"Authorization": f"Bearer {tokens.access_token}"}))
                if response.status_code == 200:
                    claims = {**claims, **response.json()}
            return tokens, claims

    async def refresh(self, provider: OAuthProvider, tokens: Tokens) -> Tokens:
        """New tokens; the refresh token the provider rotated to, or the same one."""
        if not tokens.refresh_token:
            raise OAuthError(InboxErrorCode.OAUTH_REVOKED, f"{provider.name} gave no refresh "
                             "token; connect the inbox again")
        async with self._client(provider) as client:
            token = await self._call(provider, "token refresh", client.refresh_token(
                provider.token_url, refresh_token=tokens.refresh_token))
            return self._tokens(provider, dict(token), tokens.refresh_token)

    async def revoke(self, provider: OAuthProvider, tokens: Tokens) -> bool:
        """Revoke the grant (RFC 7009: the refresh token revokes it all); False when the
        provider has no revocation endpoint or could not be reached."""
        if not provider.revocation_url:
            return False
        async with self._client(provider) as client:
            try:
                response = await self._call(provider, "revocation", client.revoke_token(
                    provider.revocation_url, tokens.refresh_token or tokens.access_token,
                    token_type_hint="refresh_token" if tokens.refresh_token
                    else "access_token"))
            except OAuthError as exc:
                log.warning("%s", exc.message)
                return False
            return bool(response.status_code == 200)


def new_verifier() -> str:
    """A PKCE code verifier (RFC 7636 4.1: 43 to 128 characters)."""
    return str(generate_token(64))


def address_from(claims: dict[str, Any]) -> str:
    """The mailbox address in the ID token or userinfo claims."""
    for name in ("email", "preferred_username", "upn"):
        value = claims.get(name)
        if isinstance(value, str) and "@" in value:
            return str(value)
    raise OAuthError(InboxErrorCode.OAUTH_FAILED, "the provider did not say which email address "
                     "signed in (no email claim)")


def as_inbox_error(exc: OAuthError) -> InboxError:
    return InboxError(exc.code, exc.message)


def _disconnected() -> InboxError:
    return InboxError(InboxErrorCode.DISCONNECTED, "the inbox was disconnected by its user: "
                      "connect it again")


class TokenKeeper:
    """Access tokens of OAuth inboxes: refreshed before they expire (and on demand
    after a login failure), one refresh at a time per inbox, the rotation stored."""

    def __init__(self, runtime: Runtime, box: CredentialBox, client: OAuthClient,
                 providers: dict[str, OAuthProvider]) -> None:
        self.runtime, self.box, self.client, self.providers = runtime, box, client, providers
        self._locks: dict[int, asyncio.Lock] = {}

    def provider(self, name: str) -> OAuthProvider:
        provider = self.providers.get(name)
        if provider is None:
            raise InboxError(InboxErrorCode.OAUTH_REVOKED, f"the OAuth provider {name!r} is "
                             "no longer configured on this server")
        return provider

    async def bearer(self, inbox: Inbox, *, rejected: str = "") -> Bearer:
        """A usable access token of ``inbox`` (an OAuth inbox). ``rejected``: the token a
        server just refused; a new one is fetched unless another caller already did.
        Raises InboxError ``oauth_revoked``, ``oauth_scope_missing``,
        ``provider_unavailable``."""
        provider = self.provider(inbox.oauth_provider)
        tokens = Tokens.loads(self.box.decrypt(inbox.secret))
        if tokens.fresh() and tokens.access_token != rejected:
            return Bearer(tokens.access_token, provider.sasl)
        lock = self._locks.setdefault(inbox.id, asyncio.Lock())
        async with lock:
            async with self.runtime.db.read() as session:
                current = await session.get(Inbox, inbox.id)
                if current is None or current.auth != InboxAuth.OAUTH:
                    raise InboxError(InboxErrorCode.OAUTH_REVOKED,
                                     "the inbox is no longer connected")
                if not current.secret:
                    raise _disconnected()
                stored = current.secret
                tokens = Tokens.loads(self.box.decrypt(stored))
            if tokens.fresh() and tokens.access_token != rejected:
                return Bearer(tokens.access_token, provider.sasl)  # refreshed meanwhile
            try:
                renewed = await self.client.refresh(provider, tokens)
            except OAuthError as exc:
                raise as_inbox_error(exc) from None
            async with self.runtime.db.transaction() as session:
                current = await session.get(Inbox, inbox.id)
                # Only over the tokens it renewed: a disconnect (which forgot them) or a
                # reconnect (a new grant) while the provider answered stands.
                if current is None or not current.secret:
                    raise _disconnected()
                if current.secret != stored:
                    tokens = Tokens.loads(self.box.decrypt(current.secret))
                    return Bearer(tokens.access_token, provider.sasl)
                current.secret = self.box.encrypt(renewed.dumps())
            log.info("inbox %d: access token refreshed", inbox.id)
            return Bearer(renewed.access_token, provider.sasl)
