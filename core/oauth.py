"""Connected inboxes with OAuth 2.0: the providers (operator configuration), the signed
``state`` of an authorization request, and the contract the HTTP adapter calls.

Providers are never user input: their endpoints come from the defaults below and the
operator's options (``--oauth-<provider>-...``), so a user cannot make inboxlog fetch a
URL of their choosing. The token endpoint calls themselves go through the outbound
check of ``inbox_sync.oauth`` (public addresses on 443 unless ``--allow-oauth-hosts``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Protocol

from core.credentials import CredentialBox, CredentialsUnreadable
from core.errors import CoreError
from core.inboxes import Endpoint
from core.types import InboxErrorCode, MailSecurity, SaslMechanism

# How long an authorization request may take (the user signs in at the provider).
STATE_SECONDS = 600
# The access token is refreshed this long before it expires.
REFRESH_MARGIN_SECONDS = 300

OPENID_SCOPES = ("openid", "email", "profile", "offline_access")
GOOGLE_SCOPES = ("openid", "email", "https://mail.google.com/")
MICROSOFT_SCOPES = ("openid", "email", "offline_access",
                    "https://outlook.office.com/IMAP.AccessAsUser.All",
                    "https://outlook.office.com/SMTP.Send")


class OAuthError(CoreError):
    """An OAuth step failed; ``code``: ``oauth_revoked`` (the grant was refused:
    revoked, password changed, consent withdrawn), ``oauth_scope_missing``,
    ``provider_unavailable`` (temporary), ``oauth_state_invalid``, ``oauth_denied``
    (the user said no), ``oauth_not_configured``, ``oauth_failed`` (members of
    ``core.types.InboxErrorCode``: an OAuth failure of an inbox is an InboxError too)."""

    code: InboxErrorCode

    def __init__(self, code: InboxErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = InboxErrorCode(code)


@dataclass(frozen=True)
class OAuthProvider:
    """One authorization server and the mail servers its tokens open.

    ``sasl``: ``xoauth2`` (Gmail, Microsoft 365) or ``oauthbearer`` (RFC 7628).
    ``files_sent``: the provider's SMTP server files what it sends in the Sent folder
    itself (Gmail), so no copy is appended.
    """

    name: str
    authorize_url: str
    token_url: str
    revocation_url: str = ""
    userinfo_url: str = ""  # else the address is read from the ID token
    scopes: tuple[str, ...] = ()
    required_scopes: tuple[str, ...] = ()  # a grant without them is oauth_scope_missing
    imap: Endpoint = field(default_factory=lambda: Endpoint("", 993, MailSecurity.SSL))
    smtp: Endpoint = field(default_factory=lambda: Endpoint("", 587, MailSecurity.STARTTLS))
    sasl: SaslMechanism = SaslMechanism.XOAUTH2
    files_sent: bool = False
    client_id: str = ""
    client_secret: str = ""
    extra_authorize_params: dict[str, str] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.authorize_url and self.token_url
                    and self.imap.host and self.smtp.host)


def google(client_id: str = "", client_secret: str = "") -> OAuthProvider:
    return OAuthProvider(
        "google", "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token", "https://oauth2.googleapis.com/revoke",
        "https://openidconnect.googleapis.com/v1/userinfo", GOOGLE_SCOPES,
        ("https://mail.google.com/",), Endpoint("imap.gmail.com", 993, MailSecurity.SSL),
        Endpoint("smtp.gmail.com", 465, MailSecurity.SSL), SaslMechanism.XOAUTH2,
        files_sent=True,
        client_id=client_id, client_secret=client_secret,
        # A refresh token is issued only with offline access, and again only on consent.
        extra_authorize_params={"access_type": "offline", "prompt": "consent"})


def microsoft(client_id: str = "", client_secret: str = "",
              tenant: str = "common") -> OAuthProvider:
    base = f"https://login.microsoftonline.com/{tenant or 'common'}/oauth2/v2.0"
    # Microsoft has no revocation endpoint for these tokens: a user revokes the app
    # in their account (the grant then fails as oauth_revoked).
    return OAuthProvider(
        "microsoft", f"{base}/authorize", f"{base}/token", "", "", MICROSOFT_SCOPES,
        ("IMAP.AccessAsUser.All", "SMTP.Send"),
        Endpoint("outlook.office365.com", 993, MailSecurity.SSL),
        Endpoint("smtp.office365.com", 587, MailSecurity.STARTTLS), SaslMechanism.XOAUTH2,
        client_id=client_id, client_secret=client_secret)


def with_overrides(provider: OAuthProvider, *, authorize_url: str = "", token_url: str = "",
                   revocation_url: str | None = None, userinfo_url: str | None = None,
                   scopes: str = "", imap: Endpoint | None = None,
                   smtp: Endpoint | None = None, sasl: str = "") -> OAuthProvider:
    """The provider with the operator's overrides (empty: keep the default). Scopes
    given replace the defaults, and all but the OpenID ones are then required. The
    values are the option texts; ``sasl`` one of ``SaslMechanism`` (ValueError else)."""
    required = provider.required_scopes
    if scopes:
        required = tuple(s for s in scopes.split() if s not in OPENID_SCOPES)
    return replace(
        provider, authorize_url=authorize_url or provider.authorize_url,
        token_url=token_url or provider.token_url,
        revocation_url=provider.revocation_url if revocation_url is None else revocation_url,
        userinfo_url=provider.userinfo_url if userinfo_url is None else userinfo_url,
        scopes=tuple(scopes.split()) if scopes else provider.scopes, required_scopes=required,
        imap=imap or provider.imap, smtp=smtp or provider.smtp,
        sasl=SaslMechanism(sasl) if sasl else provider.sasl)


def has_scopes(granted: str | None, required: tuple[str, ...]) -> bool:
    """Whether a token response's ``scope`` holds every required scope (Microsoft
    answers them without the resource prefix). No ``scope``: as asked (RFC 6749 5.1)."""
    if granted is None:
        return True
    names = set(granted.split())
    short = {name.rsplit("/", 1)[-1] for name in names}
    return all(s in names or s.rsplit("/", 1)[-1] in short for s in required)


@dataclass(frozen=True)
class PendingAuthorization:
    """What an authorization request carries through the provider, in ``state``:
    encrypted and authenticated (so the PKCE verifier stays secret) and timestamped."""

    portal_id: int
    user_id: int | None  # None: a team inbox's mailbox (``team_inbox_id``), the admin's
    provider: str
    code_verifier: str
    nonce: str
    first_sync_days: int
    team_inbox_id: int | None = None


class StateBox:
    """Seals and opens ``state`` with a key of its own derived from the server secret;
    a state is good for ``STATE_SECONDS`` and once (``used`` remembers its nonce)."""

    def __init__(self, server_secret: str) -> None:
        self._box = CredentialBox(server_secret, purpose=b"oauth state v1")
        self._used: dict[str, None] = {}

    def seal(self, pending: PendingAuthorization) -> str:
        return self._box.encrypt(json.dumps(pending.__dict__))

    def open(self, state: str) -> PendingAuthorization:
        try:
            fields = json.loads(self._box.decrypt(state, ttl=STATE_SECONDS))
            pending = PendingAuthorization(**fields)
        except (CredentialsUnreadable, ValueError, TypeError):
            raise OAuthError(InboxErrorCode.OAUTH_STATE_INVALID, "this sign-in link is not "
                             "valid or has expired: start connecting the inbox again") from None
        if pending.nonce in self._used:
            raise OAuthError(InboxErrorCode.OAUTH_STATE_INVALID, "this sign-in link was "
                             "already used: start connecting the inbox again")
        self._used[pending.nonce] = None
        while len(self._used) > 10_000:
            self._used.pop(next(iter(self._used)))
        return pending


@dataclass(frozen=True)
class OAuthResult:
    inbox_id: int
    address: str
    reconnected: bool


class OAuthConnector(Protocol):
    """What the HTTP adapter asks of the connector for OAuth inboxes."""

    def providers(self) -> list[str]:
        """The names of the configured providers."""
        ...

    async def authorization_url(self, portal_id: int, user_id: int, provider: str,
                                first_sync_days: int) -> str:
        """Where to send the user's browser to grant access (raises OAuthError)."""
        ...

    async def complete_authorization(self, state: str, code: str) -> OAuthResult:
        """The provider's redirect: exchange the code, connect (or reconnect) the inbox
        (raises OAuthError or core.inboxes.InboxError)."""
        ...

    async def disconnect(self, portal_id: int, inbox_id: int) -> None:
        """The user disconnects: revoke the grant at the provider, forget the tokens,
        stop syncing; the checkpoints stay, so connecting again resumes."""
        ...
