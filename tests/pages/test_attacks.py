"""Attacks on the pages through the real port: each test is an attack that once worked
(or a neighbour of one), and checks that it no longer does."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from core.types import Role
from tests.pages.conftest import PASSWORD, Browsers, csrf_of, unique, web_account
from tests.support.server import Server, free_port

# Spellings of an address that email-validator reads as the same one: fullwidth letters
# and the ideographic full stop in the domain fold to ASCII (IDNA, UTS #46).
_FOLDED = str.maketrans("ourcexampl.", "ｏｕｒｃｅｘａｍｐｌ。")


def _spellings(address: str) -> list[str]:
    """Twelve spellings of ``address``: the domain's characters folded one at a time."""
    local, _, domain = address.partition("@")
    variants = [address, address.upper()]
    for index, character in enumerate(domain):
        folded = character.translate(_FOLDED)
        if folded != character:
            variants.append(f"{local}@{domain[:index]}{folded}{domain[index + 1:]}")
    return variants


def test_guessing_under_other_spellings_shares_the_address_budget(
        browsers: Browsers, web_server: Server) -> None:
    """Ten wrong passwords, each under another spelling of one address (fullwidth or
    upper case letters), spend that address's budget: the right password waits (429)."""
    account = web_account(web_server, unique("spelled"), role=Role.USER)
    browser = browsers.new()
    # A client address of its own (the server trusts X-Forwarded-For from loopback, its
    # proxy's): the per-client budget of the shared server stays out of this test.
    browser.headers["X-Forwarded-For"] = "198.51.100.21"
    token = csrf_of(browser.get("/sign-in").text)
    spellings = _spellings(account.email)
    assert len(spellings) >= 11
    for spelling in spellings[:10]:
        answer = browser.post("/sign-in", data={"csrf": token, "email": spelling,
                                                "password": "guess guess guess"})
        assert answer.status_code == 401, spelling
    answer = browser.post("/sign-in", data={"csrf": token, "email": spellings[10],
                                            "password": PASSWORD})
    assert answer.status_code == 429, answer.text
    assert int(answer.headers["retry-after"]) > 0


def test_links_by_mail_under_other_spellings_share_the_address_budget(
        browsers: Browsers, web_server: Server) -> None:
    """Three links by mail per address in ten minutes, however the address is spelled:
    a fourth under a new spelling waits (no mail bombing)."""
    account = web_account(web_server, unique("bombed"), role=Role.USER)
    browser = browsers.new()
    browser.headers["X-Forwarded-For"] = "198.51.100.22"
    token = csrf_of(browser.get("/sign-in").text)
    answers = [browser.post("/sign-in/link", data={"csrf": token, "email": spelling})
               for spelling in _spellings(account.email)[:4]]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert answers[3].status_code == 429



@pytest.fixture(scope="module")
def mute_relay_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`inboxlog serve` whose SMTP relay never answers (a closed loopback port)."""
    running = Server(tmp_path_factory.mktemp("mute-relay"), extra_args=(
        "--smtp-relay", f"smtp://relay:s3cret@127.0.0.1:{free_port()}")).start()
    yield running
    running.stop()


@pytest.mark.parametrize("path", ["/sign-in/link", "/password-reset"])
def test_asking_for_a_link_tells_nothing_of_the_address(mute_relay_server: Server,
                                                        path: str) -> None:
    """A link asked for an address with an account and for one without get the same
    answer, also when the mail cannot be sent: the answer never waits for the mail (its
    time and a relay's failure told which addresses have accounts)."""
    account = web_account(mute_relay_server, unique("known"), role=Role.USER)
    answers = []
    for n, address in enumerate((account.email, unique("nobody"))):
        with httpx.Client(base_url=mute_relay_server.base_url, timeout=30) as client:
            client.headers["X-Forwarded-For"] = f"198.51.100.{30 + n}"
            token = csrf_of(client.get("/sign-in").text)
            answer = client.post(path, data={"csrf": token, "email": address})
            answers.append((answer.status_code, answer.text.replace(address, "ADDRESS")))
    assert answers[0] == answers[1]
    assert answers[0][0] == 200


@pytest.mark.parametrize("path", ["/tokens/{id}/revoke", "/team/{id}/role",
                                  "/inboxes/{id}/sync", "/inboxes/{id}/disconnect"])
def test_an_id_past_the_databases_is_not_found(browsers: Browsers, web_server: Server,
                                               path: str) -> None:
    """A form posted to an id no database can hold (past 2^63) is a 404 page, not an
    error the server does not handle."""
    account = web_account(web_server, unique("huge"))
    browser = browsers.new(account)
    token = csrf_of(browser.get("/tokens").text)
    answer = browser.post(path.format(id=2**70), data={"csrf": token, "role": "admin"})
    assert answer.status_code == 404
    assert "content-security-policy" in answer.headers


def test_forwarded_for_from_an_untrusted_peer_is_ignored(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Behind no trusted proxy, a client that names a new X-Forwarded-For on every
    attempt (each on another address) still spends its own budget: the 101st waits."""
    server = Server(tmp_path_factory.mktemp("no-proxy"),
                    extra_args=("--forwarded-allow-ips", "192.0.2.1")).start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            token = csrf_of(client.get("/sign-in").text)
            answers = [client.post("/sign-in", headers={"X-Forwarded-For": f"203.0.113.{n}"},
                                   data={"csrf": token, "email": unique("spray"),
                                         "password": "guess guess guess"}).status_code
                       for n in range(101)]
    finally:
        server.stop()
    assert set(answers[:100]) == {401}
    assert answers[100] == 429


@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example", "/\t/evil.example",
                                    "https://evil.example/", " //evil.example",
                                    "/\n/evil.example", "\\\\evil.example"])
def test_after_sign_in_the_browser_stays_here(browsers: Browsers, web_server: Server,
                                              target: str) -> None:
    """A ``next`` that a browser would read as another site's address sends the
    signed-in user to a path of this site (the sign-in form and its page alike)."""
    account = web_account(web_server, unique("next"), role=Role.USER)
    browser = browsers.new()
    browser.headers["X-Forwarded-For"] = "198.51.100.23"
    token = csrf_of(browser.get("/sign-in").text)
    answer = browser.post("/sign-in", data={"csrf": token, "email": account.email,
                                            "password": PASSWORD, "next": target})
    again = browser.get("/sign-in", params={"next": target})
    for location in (answer.headers["location"], again.headers["location"]):
        assert location.startswith("/") and not location.startswith(("//", "/\\"))
        assert "\t" not in location and "\n" not in location


def test_a_tampered_session_cookie_signs_nobody_in(browsers: Browsers,
                                                   web_server: Server) -> None:
    """The session cookie changed by one character, cut to its unsigned part, or
    replaced by the session's token itself, is no session: the page asks to sign in."""
    browser = browsers.new(web_account(web_server, unique("cookie"), role=Role.USER))
    cookie = browser.cookies["il_session"]
    assert browser.get("/setup").status_code == 200
    payload = cookie.strip('"').split(".")[0]
    token = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert token.startswith("ils_")
    # A character of the signature's first, not its last: the last base64 character of a
    # 32-byte HMAC carries 2 unused bits, so changing only those decodes to the same bytes.
    body, _, signature = cookie.strip('"').rpartition(".")
    flipped = f"{body}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    for forged in (flipped, payload, token):
        with httpx.Client(base_url=web_server.base_url, cookies={"il_session": forged}) as c:
            answer = c.get("/setup")
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/sign-in")


@pytest.mark.parametrize("path", ["/oauth/result?status=failed&code=oauth_denied",
                                  "/oauth/result?status=connected&code=%3Cb%3E",
                                  "/confirm-address?token=made-up"])
def test_the_api_s_own_pages_are_locked_down_too(web_server: Server, path: str) -> None:
    """The two pages the API serves a browser (an inbox's OAuth result, an address's
    confirmation, with its button) send a CSP that runs nothing and forbids framing."""
    answer = httpx.get(web_server.base_url + path, headers={"Accept": "text/html"})
    assert answer.headers["content-type"].startswith("text/html")
    policy = answer.headers.get("content-security-policy", "")
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "<b>" not in answer.text


def test_the_search_page_refuses_the_calendars_last_day(browsers: Browsers,
                                                        web_server: Server) -> None:
    """``before`` includes its day, so it ends on the next one: 9999-12-31 has none, and
    the page says so (422) rather than failing."""
    browser = browsers.new(web_account(web_server, unique("calendar"), role=Role.USER))
    answer = browser.get("/search", params={"q": "offer", "before": "9999-12-31"})
    assert answer.status_code == 422
    assert "content-security-policy" in answer.headers
