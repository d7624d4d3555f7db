"""OAuth pieces without a server: where token calls may go, the state, the providers."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from core.inboxes import Endpoint
from core.oauth import (
    OAuthError,
    OAuthProvider,
    PendingAuthorization,
    StateBox,
    has_scopes,
    microsoft,
    with_overrides,
)
from inbox_sync.oauth import OAuthClient, Tokens, address_from
from inbox_sync.outbound import Destinations, parse_rules


def _provider(token_url: str) -> OAuthProvider:
    return OAuthProvider("oidc", "https://idp.example/authorize", token_url,
                         client_id="c", client_secret="s")


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.5", "169.254.169.254",
                                     "192.168.1.1", "::1", "100.64.0.1"])
def test_token_calls_never_reach_internal_addresses(address: str) -> None:
    """A token endpoint whose name resolves to an internal address is refused before
    any packet (destination_not_allowed), whatever the operator's provider says."""
    client = OAuthClient("https://crm.example/oauth/callback",
                         Destinations(resolver=lambda host, port: [(address, port)]))
    tokens = Tokens("a", "r", 0)
    with pytest.raises(OAuthError) as caught:
        asyncio.run(client.refresh(_provider("https://idp.example/token"), tokens))
    assert caught.value.code == "destination_not_allowed"
    assert "--allow-oauth-hosts" in caught.value.message


def test_a_listening_loopback_token_endpoint_sees_no_connection() -> None:
    """Without an allow rule, even a real listener on loopback gets no connection; with
    one (--allow-oauth-hosts 127.0.0.1:PORT) the call goes out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        url = f"http://127.0.0.1:{port}/token"
        refused = OAuthClient("https://crm.example/cb", Destinations())
        with pytest.raises(OAuthError) as caught:
            asyncio.run(refused.refresh(_provider(url), Tokens("a", "r", 0)))
        assert caught.value.code == "destination_not_allowed"
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody came
        allowed = Destinations(parse_rules(f"127.0.0.1:{port}"))
        assert allowed.for_ports(frozenset({443})).addresses(
            Endpoint("127.0.0.1", port, "ssl"), "https") == ["127.0.0.1"]


def test_public_addresses_need_port_443() -> None:
    """A public address is allowed on 443 only, unless a rule says otherwise."""
    public = Destinations(resolver=lambda host, port: [("93.184.216.34", port)])
    client = OAuthClient("https://crm.example/cb", public)
    with pytest.raises(OAuthError) as caught:
        asyncio.run(client.refresh(_provider("https://idp.example:8443/token"),
                                   Tokens("a", "r", 0)))
    assert caught.value.code == "destination_not_allowed"


def test_state_is_sealed_bound_single_use_and_short_lived(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """The state carries the user and the PKCE verifier encrypted; tampered, reused,
    expired or sealed with another key it is oauth_state_invalid."""
    box = StateBox("secret-one")
    pending = PendingAuthorization(3, 7, "google", "v" * 64, "nonce-1", 30)
    state = box.seal(pending)
    assert "v" * 20 not in state
    assert box.open(state) == pending
    for bad in (state, state[:-4] + "AAAA", StateBox("another").seal(pending)):
        with pytest.raises(OAuthError) as caught:
            box.open(bad)
        assert caught.value.code == "oauth_state_invalid"
    old = box.seal(PendingAuthorization(3, 7, "google", "v" * 64, "nonce-2", 30))
    later = time.time() + 601
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(OAuthError):
        box.open(old)


def test_providers_are_defaults_an_operator_overrides() -> None:
    """Microsoft's endpoints follow the tenant; overrides replace endpoints, mail
    servers and scopes (then required)."""
    ms = microsoft("id", tenant="contoso.onmicrosoft.com")
    assert ms.token_url == ("https://login.microsoftonline.com/contoso.onmicrosoft.com/"
                            "oauth2/v2.0/token")
    assert "offline_access" in ms.scopes and ms.imap.host == "outlook.office365.com"
    moved = with_overrides(ms, token_url="https://127.0.0.1:9/token", scopes="openid mail")
    assert moved.token_url == "https://127.0.0.1:9/token"
    assert moved.required_scopes == ("mail",)


def test_scope_checks_and_the_address() -> None:
    """Microsoft answers scopes without the resource prefix; a missing one is caught;
    the address comes from email, else preferred_username."""
    assert has_scopes("IMAP.AccessAsUser.All SMTP.Send openid",
                      ("https://outlook.office.com/IMAP.AccessAsUser.All",
                       "https://outlook.office.com/SMTP.Send"))
    assert not has_scopes("openid email", ("https://mail.google.com/",))
    assert has_scopes(None, ("x",))
    assert address_from({"preferred_username": "rep@contoso.example"}) == "rep@contoso.example"
    with pytest.raises(OAuthError):
        address_from({"sub": "123"})
    assert "secret-token" not in repr(Tokens("secret-token", "secret-token", 1.0))
