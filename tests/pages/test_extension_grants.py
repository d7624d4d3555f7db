"""The extension gets its token without the CLI: authorization code with PKCE against
inboxlog (/oauth/authorize, /oauth/token), and gives it back (/oauth/revoke)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from core.types import Role
from tests.pages.conftest import Browsers, csrf_of, unique, web_account
from tests.support.server import Server

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
    """Allowed, the code and its verifier buy a user token named after the client, once;
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
    again = exchange(web_server, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
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
