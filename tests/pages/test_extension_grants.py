"""The extension gets its token without the CLI: authorization code with PKCE against
inboxlog (/oauth/authorize, /oauth/token), and gives it back (/oauth/revoke)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from core.types import Role
from tests.pages.conftest import Browsers, csrf_of, link_in, unique, web_account
from tests.support.server import Server
from tests.support.smtp_recorder import SmtpRecorder

REDIRECT = "https://abcdefghijklmnopabcdefghijklmnop.chromiumapp.org/done"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(browser: httpx.Client, challenge: str, *, decision: str = "allow",
              redirect_uri: str = REDIRECT) -> dict[str, list[str]]:
    """Open the consent page, press a button; the redirect's query."""
    query = {"response_type": "code", "client_id": "inboxlog for Gmail",
             "redirect_uri": redirect_uri, "code_challenge": challenge,
             "code_challenge_method": "S256", "state": "xyz"}
    page = browser.get("/oauth/authorize?" + urlencode(query))
    assert page.status_code == 200, page.text
    assert "Allow the extension to log and track for you?" in page.text
    assert "inboxlog for Gmail" in page.text
    assert f"form-action 'self' {REDIRECT.rsplit('/', 1)[0]}" in page.headers[
        "content-security-policy"]
    answer = browser.post("/oauth/authorize", data={**query, "csrf": csrf_of(page.text),
                                                    "decision": decision})
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(redirect_uri + "?")
    return parse_qs(urlsplit(location).query)


def exchange(server: Server, code: str, verifier: str, **changes: str) -> httpx.Response:
    return httpx.post(f"{server.base_url}/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": "inboxlog for Gmail", "code_verifier": verifier, **changes})


def test_code_with_pkce_buys_a_token_once(browsers: Browsers, web_server: Server) -> None:
    """Allowed, the code and its verifier buy a user token named after the client;
    another verifier or client gets invalid_grant. Revoked by the extension, it stops."""
    account = web_account(web_server, unique("ext"), role=Role.USER)
    verifier, challenge = pkce()
    answer = authorize(browsers.new(account), challenge)
    assert answer["state"] == ["xyz"]
    code = answer["code"][0]
    wrong = exchange(web_server, code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    other_client = exchange(web_server, code, verifier, client_id="someone else")
    assert other_client.json()["error"] == "invalid_grant"
    granted = exchange(web_server, code, verifier)
    assert granted.status_code == 200, granted.text
    assert granted.headers["cache-control"] == "no-store"
    body = granted.json()
    assert body["token_type"] == "Bearer" and body["access_token"].startswith("ilu_")
    with web_server.api(body["access_token"]) as api:
        assert api.get("/api/v1/me").status_code == 200
        names = [t["name"] for t in api.get("/api/v1/tokens").json()["items"]]
        assert "extension inboxlog for Gmail" in names
        revoked = httpx.post(f"{web_server.base_url}/oauth/revoke",
                             data={"token": body["access_token"]})
        assert revoked.status_code == 200
        assert api.get("/api/v1/me").status_code == 401


def test_denied_or_unsafe_requests_get_no_code(browsers: Browsers, web_server: Server) -> None:
    """Deny answers access_denied; a web site's redirect URI, or no PKCE, is an error
    page that redirects nowhere; signed out, the page asks to sign in first."""
    account = web_account(web_server, unique("ext"), role=Role.USER)
    browser = browsers.new(account)
    denied = authorize(browser, pkce()[1], decision="deny")
    assert denied == {"error": ["access_denied"], "state": ["xyz"]}
    for query in ({"redirect_uri": "https://evil.example/cb", "code_challenge": pkce()[1]},
                  {"redirect_uri": REDIRECT, "code_challenge": ""}):
        page = browser.get("/oauth/authorize?" + urlencode({
            "response_type": "code", "client_id": "x", "code_challenge_method": "S256",
            **query}))
        assert page.status_code == 400 and "location" not in page.headers
    signed_out = browsers.new().get("/oauth/authorize?client_id=x")
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/sign-in?next=%2Foauth%2Fauthorize")


def test_a_replayed_code_revokes_the_token_it_bought(browsers: Browsers,
                                                    web_server: Server) -> None:
    """RFC 6749 10.5: a spent code presented again (with its verifier) is refused and the
    token it bought stops working; the user's other tokens keep working. Replayed
    without the verifier, it revokes nothing (whoever saw the code cannot cut the user
    off)."""
    account = web_account(web_server, unique("replay"), role=Role.USER)
    browser = browsers.new(account)
    verifier, challenge = pkce()
    code = authorize(browser, challenge)["code"][0]
    first = exchange(web_server, code, verifier).json()["access_token"]
    other_verifier, other_challenge = pkce()
    other = exchange(web_server, authorize(browser, other_challenge)["code"][0],
                     other_verifier).json()["access_token"]
    blind = exchange(web_server, code, pkce()[0])
    assert blind.status_code == 400 and blind.json()["error"] == "invalid_grant"
    with web_server.api(first) as api:
        assert api.get("/api/v1/me").status_code == 200
        again = exchange(web_server, code, verifier)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        assert api.get("/api/v1/me").status_code == 401
    for token in (other, account.portal.user_token):
        with web_server.api(token) as api:
            assert api.get("/api/v1/me").status_code == 200


def test_a_new_password_revokes_the_extensions_tokens(browsers: Browsers, web_server: Server,
                                                      relay: SmtpRecorder) -> None:
    """A password reset ends the user's sessions and revokes every token the
    extension's sign-in issued them; the token the CLI made and one made on the
    tokens page stay (deliberate, listed there to revoke); another user's extension
    token stays."""
    account = web_account(web_server, unique("reset"), role=Role.USER)
    signed_in = browsers.new(account)
    verifier, challenge = pkce()
    granted = exchange(web_server, authorize(signed_in, challenge)["code"][0],
                       verifier).json()["access_token"]
    made = signed_in.post("/tokens", data={"csrf": csrf_of(signed_in.get("/tokens").text),
                                           "name": "a script"})
    found = re.search(r'<code id="token-secret">(ilu_[^<]+)</code>', made.text)
    assert found, made.text
    colleague = web_account(web_server, unique("colleague"), role=Role.USER)
    their_verifier, their_challenge = pkce()
    theirs = exchange(web_server, authorize(browsers.new(colleague), their_challenge)[
        "code"][0], their_verifier).json()["access_token"]
    browser = browsers.new()
    token = csrf_of(browser.get("/password-reset").text)
    assert browser.post("/password-reset", data={"csrf": token, "email": account.email}
                        ).status_code == 200
    link_token = link_in(relay, account.email).split("token=")[1]
    assert browser.post("/link", data={"csrf": token, "token": link_token,
                                       "password": "another new passphrase"}
                        ).status_code == 303
    assert signed_in.get("/setup").status_code == 303
    assert browser.get("/setup").status_code == 200
    expected = {granted: 401, found.group(1): 200, account.portal.user_token: 200,
                theirs: 200}
    for secret, status in expected.items():
        with web_server.api(secret) as api:
            assert api.get("/api/v1/me").status_code == status, secret[:8]
