"""Attacks on the extension's OAuth sign-in (authorization code with PKCE) through the
real port: a code goes only to an extension's or a loopback redirect URI, buys only a
user token, and is worth nothing without its verifier, client and redirect URI."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from core.types import Role
from tests.pages.conftest import Browsers, csrf_of, unique, web_account
from tests.pages.test_extension_grants import REDIRECT, authorize, exchange, pkce
from tests.support.server import Server


@pytest.fixture(scope="module")
def oauth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("oauth-attacks")).start()
    yield running
    running.stop()


@pytest.fixture
def browsers(oauth_server: Server) -> Iterator[Browsers]:
    with Browsers(oauth_server) as made:
        yield made


# Redirect URIs that name a web site's origin, however dressed up as an allowed one.
FOREIGN = [
    "http://127.0.0.1.evil.example/",
    "http://127.0.0.1@evil.example/",
    "http://evil.example#@127.0.0.1/",
    "http://127.0.0.1:80\\@evil.example/",
    "http://127.0.0.1%2eevil.example/",
    "http://127.0.0.1\t.evil.example/",
    "http:\\\\127.0.0.1/",
    "http://localhost/cb",
    "http://0x7f000001/",
    "http://127.1/",
    "https://127.0.0.1/cb",
    "https://abcdefghijklmnopabcdefghijklmnop.chromiumapp.org.evil.example/",
    "https://x.abcdefghijklmnopabcdefghijklmnop.chromiumapp.org/",
    "https://abcdefghijklmnopabcdefghijklmno.chromiumapp.org/",
    "javascript://127.0.0.1/%0aalert(1)",
    REDIRECT + "#fragment",
]


def _query(challenge: str, **changes: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": "inboxlog for Gmail",
            "redirect_uri": REDIRECT, "code_challenge": challenge,
            "code_challenge_method": "S256", "state": "xyz", **changes}


@pytest.mark.parametrize("uri", FOREIGN)
def test_a_web_sites_redirect_uri_gets_no_code(browsers: Browsers, oauth_server: Server,
                                               uri: str) -> None:
    """The consent page refuses a redirect URI that is not an extension's or loopback's,
    and redirects nowhere; so does the consent form posted with it."""
    browser = browsers.new(web_account(oauth_server, unique("redir"), role=Role.USER))
    query = _query(pkce()[1], redirect_uri=uri)
    page = browser.get("/oauth/authorize?" + urlencode(query))
    assert page.status_code == 400 and "location" not in page.headers
    token = csrf_of(browser.get("/tokens").text)
    posted = browser.post("/oauth/authorize", data={**query, "csrf": token,
                                                    "decision": "allow"})
    assert posted.status_code == 400 and "location" not in posted.headers


def test_the_plain_method_is_refused(browsers: Browsers, oauth_server: Server) -> None:
    """code_challenge_method=plain (the verifier in the clear) is not PKCE enough."""
    browser = browsers.new(web_account(oauth_server, unique("plain"), role=Role.USER))
    verifier = pkce()[0][:43]
    page = browser.get("/oauth/authorize?" + urlencode(_query(
        verifier, code_challenge_method="plain")))
    assert page.status_code == 400


def test_consent_needs_this_sites_form(browsers: Browsers, oauth_server: Server) -> None:
    """Allowing without the form's token, or from another site, gives no code."""
    browser = browsers.new(web_account(oauth_server, unique("csrf"), role=Role.USER))
    query = _query(pkce()[1])
    token = csrf_of(browser.get("/oauth/authorize?" + urlencode(query)).text)
    for data, headers in (({**query, "decision": "allow"}, {}),
                          ({**query, "decision": "allow", "csrf": "0" * 64}, {}),
                          ({**query, "decision": "allow", "csrf": token},
                           {"Sec-Fetch-Site": "cross-site"})):
        answer = browser.post("/oauth/authorize", data=data, headers=headers)
        assert answer.status_code == 403 and "location" not in answer.headers


def test_a_code_is_nothing_without_its_verifier_client_and_redirect(
        browsers: Browsers, oauth_server: Server) -> None:
    """An intercepted code buys nothing without the verifier, with the challenge as
    verifier, from another client or redirect URI; a forged one neither."""
    browser = browsers.new(web_account(oauth_server, unique("stolen"), role=Role.USER))
    verifier, challenge = pkce()
    code = authorize(browser, challenge)["code"][0]
    for changes in ({"code_verifier": ""}, {"code_verifier": challenge},
                    {"client_id": "inboxlog for Gmail "},
                    {"redirect_uri": REDIRECT + "/"},
                    {"redirect_uri": "http://127.0.0.1:9/done"}):
        answer = exchange(oauth_server, code, verifier, **changes)
        assert answer.status_code == 400, changes
        assert answer.json()["error"] in ("invalid_grant", "invalid_request"), changes
    forged = code[:-2] + ("BB" if code.endswith("AA") else "AA")
    assert exchange(oauth_server, forged, verifier).json()["error"] == "invalid_grant"
    assert exchange(oauth_server, code, verifier).status_code == 200


def test_an_admins_code_buys_a_user_token(browsers: Browsers, oauth_server: Server) -> None:
    """The pages' admin signs the extension in: its token is a user token (the
    extension logs and tracks), refused what is for the portal's admin token."""
    browser = browsers.new(web_account(oauth_server, unique("boss"), role=Role.ADMIN))
    verifier, challenge = pkce()
    answer = exchange(oauth_server, authorize(browser, challenge)["code"][0], verifier)
    token = answer.json()["access_token"]
    assert token.startswith("ilu_")
    with oauth_server.api(token) as api:
        assert api.get("/api/v1/me").status_code == 200
        refused = api.post("/api/v1/users", json={"email": "new@ourco.example"})
        assert refused.status_code == 403
    revoked = httpx.post(f"{oauth_server.base_url}/oauth/revoke", data={"token": token})
    assert revoked.status_code == 200
    with oauth_server.api(token) as api:
        assert api.get("/api/v1/me").status_code == 401
