"""The `serve` options of the OAuth providers of connected inboxes.

For each provider P in ``google``, ``microsoft`` and ``oidc`` (a generic OpenID-style
provider for any IMAP host that takes OAUTHBEARER or XOAUTH2):
``--oauth-P-client-id``, ``--oauth-P-client-secret`` and overrides of every default:
``--oauth-P-authorize-url``, ``-token-url``, ``-revocation-url``, ``-userinfo-url``,
``-scopes``, ``-imap`` and ``-smtp`` (``HOST:PORT:ssl|starttls|none``), ``-sasl``
(``xoauth2`` or ``oauthbearer``); ``--oauth-microsoft-tenant``; ``--allow-oauth-hosts``.
Each reads ``INBOXLOG_<OPTION>`` too. A provider is offered once its client id (and,
for ``oidc``, its endpoints and mail servers) are set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from core.inboxes import SECURITY, Endpoint
from core.oauth import OAuthProvider, google, microsoft, with_overrides
from core.types import MailSecurity
from inbox_sync.outbound import Destinations
from inbox_sync.service import OAuthOptions

F = TypeVar("F", bound=Callable[..., Any])
PROVIDERS = ("google", "microsoft", "oidc")
FIELDS = ("client-id", "client-secret", "authorize-url", "token-url", "revocation-url",
          "userinfo-url", "scopes", "imap", "smtp", "sasl")


def _name(provider: str, field: str) -> str:
    return f"oauth_{provider}_{field.replace('-', '_')}"


def oauth_options(func: F) -> F:
    """Add the OAuth options to a click command."""
    for provider in reversed(PROVIDERS):
        for field in reversed(FIELDS):
            name = _name(provider, field)
            func = click.option(
                f"--oauth-{provider}-{field}", name, default="",
                envvar=f"INBOXLOG_{name.upper()}", show_envvar=True,
                help=(f"OAuth 2.0 {field.replace('-', ' ')} of the {provider} provider"
                      + (" (empty: the default)" if field not in ("client-id",
                                                                  "client-secret") else "")
                      + "."))(func)
    func = click.option(
        "--oauth-microsoft-tenant", default="common", show_default=True,
        envvar="INBOXLOG_OAUTH_MICROSOFT_TENANT", show_envvar=True,
        help="Microsoft Entra tenant: common, organizations or a tenant id.")(func)
    func = click.option(
        "--allow-oauth-hosts", default="", envvar="INBOXLOG_ALLOW_OAUTH_HOSTS",
        show_envvar=True,
        help="More destinations the OAuth token, revocation and userinfo calls may reach, "
             "as HOST:PORT,... (like --allow-mail-hosts). By default only public "
             "addresses on port 443.")(func)
    return func


def _endpoint(text: str, hint: str) -> Endpoint | None:
    if not text:
        return None
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or parts[2] not in SECURITY:
        raise click.BadParameter(f"expected HOST:PORT:{'|'.join(SECURITY)}, got {text!r}",
                                 param_hint=hint)
    return Endpoint(parts[0], int(parts[1]), MailSecurity(parts[2]))


def oauth_config(values: dict[str, Any], base_url: str) -> OAuthOptions:
    """The configured providers from the options' values (popped from ``values``)."""
    taken = {key: values.pop(key) for key in list(values)
             if key.startswith("oauth_") or key == "allow_oauth_hosts"}
    providers: dict[str, OAuthProvider] = {}
    for name in PROVIDERS:
        def get(field: str, name: str = name) -> str:
            return str(taken.get(_name(name, field)) or "")
        defaults = {"google": google(), "oidc": OAuthProvider("oidc", "", "")}.get(
            name) or microsoft(tenant=str(taken.get("oauth_microsoft_tenant") or "common"))
        sasl = get("sasl")
        if sasl not in ("", "xoauth2", "oauthbearer"):
            raise click.BadParameter("xoauth2 or oauthbearer",
                                     param_hint=f"--oauth-{name}-sasl")
        provider = with_overrides(
            defaults, authorize_url=get("authorize-url"), token_url=get("token-url"),
            revocation_url=get("revocation-url") or None,
            userinfo_url=get("userinfo-url") or None, scopes=get("scopes"),
            imap=_endpoint(get("imap"), f"--oauth-{name}-imap"),
            smtp=_endpoint(get("smtp"), f"--oauth-{name}-smtp"), sasl=sasl)
        provider = OAuthProvider(**{**provider.__dict__, "client_id": get("client-id"),
                                    "client_secret": get("client-secret")})
        if provider.configured:
            providers[name] = provider
    try:
        destinations = Destinations.parse(str(taken.get("allow_oauth_hosts") or ""))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allow-oauth-hosts") from None
    return OAuthOptions(providers, base_url.rstrip("/") + "/oauth/callback", destinations)
