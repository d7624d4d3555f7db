"""Signing in through the real HTTP port: password, links by mail (sign-in, reset,
invitation), CSRF, the sign-in budget, the session cookie and the security headers."""

from __future__ import annotations

import re
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from core.types import Role
from tests.pages.conftest import (
    PASSWORD,
    Browsers,
    WebAccount,
    csrf_of,
    link_in,
    mails_to,
        unique,
    web_account,
)
from tests.support.server import Server
from tests.support.smtp_recorder import SmtpRecorder


@pytest.fixture
def admin(web_server: Server) -> WebAccount:
    return web_account(web_server, unique("admin"))


def test_every_page_has_the_security_headers(browsers: Browsers, admin: WebAccount) -> None:
    """Signed in or out, a page, an error page and a redirect all carry the strict CSP
    (no inline script), frame-ancestors, nosniff and a referrer policy."""
    anonymous, signed_in = browsers.new(), browsers.new(admin)
    answers = [anonymous.get("/sign-in"), anonymous.get("/setup"),
               signed_in.get("/setup"), signed_in.get("/contacts/999999999"),
               signed_in.get("/not-logged"), signed_in.get("/team")]
    assert [a.status_code for a in answers] == [200, 303, 200, 404, 200, 200]
    for answer in answers:
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert answer.headers["cache-control"] == "no-store"
        assert "<script>" not in answer.text


def test_password_sign_in_sets_a_lax_httponly_session_cookie(
        browsers: Browsers, admin: WebAccount) -> None:
    """The right password starts a session in an HttpOnly, SameSite=Lax cookie (not
    Secure over plain HTTP); the wrong one says so without saying which part."""
    browser = browsers.new()
    token = csrf_of(browser.get("/sign-in").text)
    wrong = browser.post("/sign-in", data={"csrf": token, "email": admin.email,
                                           "password": "not the password"})
    assert wrong.status_code == 401
    assert "the address or the password is wrong" in wrong.text
    right = browser.post("/sign-in", data={"csrf": token, "email": admin.email,
                                           "password": PASSWORD, "next": "/contacts"})
    assert right.status_code == 303 and right.headers["location"] == "/contacts"
    cookie = next(c for c in right.headers.get_list("set-cookie")
                  if c.startswith("il_session="))
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/"} <= attributes
    assert "secure" not in attributes
    assert browser.get("/setup").status_code == 200
    assert admin.email in browser.get("/setup").text


def test_forms_without_the_csrf_token_are_refused(browsers: Browsers, admin: WebAccount) -> None:
    """A POST without the token, with another browser's, or from another site: 403."""
    signed_in = browsers.new(admin)
    other = browsers.new()
    others_token = csrf_of(other.get("/sign-in").text)
    own_token = csrf_of(signed_in.get("/setup").text)
    for data, headers in (({}, {}), ({"csrf": others_token}, {}),
                          ({"csrf": own_token}, {"Sec-Fetch-Site": "cross-site"})):
        answer = signed_in.post("/setup/settings", data={**data, "never_log": "x.example"},
                                headers=headers)
        assert answer.status_code == 403, answer.text
    answer = signed_in.post("/setup/settings", data={"csrf": own_token,
                                                     "never_log": "x.example"})
    assert answer.status_code == 303
    assert "x.example" in signed_in.get("/setup").text


def test_sign_in_attempts_are_rate_limited(browsers: Browsers, web_server: Server) -> None:
    """Ten attempts on one address in ten minutes; the eleventh waits (429, Retry-After),
    even with the right password."""
    account = web_account(web_server, unique("target"))
    browser = browsers.new()
    token = csrf_of(browser.get("/sign-in").text)
    for _ in range(10):
        answer = browser.post("/sign-in", data={"csrf": token, "email": account.email,
                                                "password": "guess guess guess"})
        assert answer.status_code == 401
    answer = browser.post("/sign-in", data={"csrf": token, "email": account.email,
                                            "password": PASSWORD})
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0
    assert "Too many sign-in attempts" in answer.text


def test_a_link_by_mail_signs_in_once(browsers: Browsers, web_server: Server,
                                      relay: SmtpRecorder) -> None:
    """The link's page only asks; its button signs in; the link then is spent. An
    address without an account gets the same answer and no mail."""
    account = web_account(web_server, unique("linked"))
    browser = browsers.new()
    token = csrf_of(browser.get("/sign-in").text)
    nobody = unique("nobody")
    for address in (account.email, nobody):
        answer = browser.post("/sign-in/link", data={"csrf": token, "email": address})
        assert answer.status_code == 200 and "a link is on its way" in answer.text
    link = link_in(relay, account.email)
    assert mails_to(relay, nobody) == []
    page = browser.get(link)
    assert page.status_code == 200 and account.email in page.text
    assert browser.get("/setup").status_code == 303  # opening the link signed no one in
    link_token = link.split("token=")[1]
    followed = browser.post("/link", data={"csrf": token, "token": link_token})
    assert followed.status_code == 303
    assert account.email in browser.get("/setup").text
    again = browsers.new()
    again_token = csrf_of(again.get("/sign-in").text)
    assert again.post("/link", data={"csrf": again_token, "token": link_token}
                      ).status_code == 410
    assert again.get(link).status_code == 410


def test_password_reset_ends_other_sessions(browsers: Browsers, web_server: Server,
                                            relay: SmtpRecorder) -> None:
    """A reset link sets a new password and signs in; the old password and every
    earlier session stop working."""
    account = web_account(web_server, unique("forgetful"))
    elsewhere = browsers.new(account)
    browser = browsers.new()
    token = csrf_of(browser.get("/password-reset").text)
    assert browser.post("/password-reset", data={"csrf": token, "email": account.email}
                        ).status_code == 200
    link_token = link_in(relay, account.email).split("token=")[1]
    short = browser.post("/link", data={"csrf": token, "token": link_token,
                                        "password": "short"})
    assert short.status_code == 422 and "at least 10 characters" in short.text
    done = browser.post("/link", data={"csrf": token, "token": link_token,
                                       "password": "a brand new passphrase"})
    assert done.status_code == 303
    assert browser.get("/setup").status_code == 200
    assert elsewhere.get("/setup").status_code == 303
    with pytest.raises(AssertionError):
        browsers.new(account)
    browsers.new(WebAccount(account.portal, account.email, "a brand new passphrase"))


def test_an_invited_user_joins_with_the_user_role(browsers: Browsers, admin: WebAccount,
                                                  relay: SmtpRecorder) -> None:
    """An admin invites an address; its link lets them choose a password and join as a
    user, who reads the settings but may not change them, until an admin makes them
    one."""
    browser = browsers.new(admin)
    invitee = unique("newcomer")
    answer = browser.post("/team/invite", data={"csrf": csrf_of(browser.get("/team").text),
                                                "email": invitee, "role": "user"})
    assert answer.status_code == 201 and f"on its way to {invitee}" in answer.text
    link_token = link_in(relay, invitee).split("token=")[1]
    newcomer = browsers.new()
    token = csrf_of(newcomer.get(f"/link?token={link_token}").text)
    joined = newcomer.post("/link", data={"csrf": token, "token": link_token,
                                          "name": "New Comer", "password": PASSWORD})
    assert joined.status_code == 303
    setup = newcomer.get("/setup")
    assert invitee in setup.text and "Only your portal's admins change these" in setup.text
    refused = newcomer.post("/setup/settings", data={"csrf": csrf_of(setup.text)})
    assert refused.status_code == 403
    team = browser.get("/team").text
    assert invitee in team and Role.USER.value in team
    # Made an admin on the team page, they may change the settings.
    user_id = re.search(r'action="/team/(\d+)/role"', team)
    assert user_id, team
    assert browser.post(f"/team/{user_id.group(1)}/role", data={
        "csrf": csrf_of(team), "role": "admin"}).status_code == 303
    assert newcomer.post("/setup/settings", data={"csrf": csrf_of(setup.text)}
                         ).status_code == 303


def test_signing_out_ends_the_session(browsers: Browsers, admin: WebAccount) -> None:
    """After sign-out the old cookie, replayed, is worth nothing."""
    browser = browsers.new(admin)
    cookie = browser.cookies["il_session"]
    token = csrf_of(browser.get("/setup").text)
    assert browser.post("/sign-out", data={"csrf": token}).status_code == 200
    replay = browsers.new()
    replay.cookies.set("il_session", cookie)
    assert replay.get("/setup").status_code == 303


def test_create_portal_prints_a_link_that_sets_up_its_admin(
        browsers: Browsers, web_server: Server) -> None:
    """`admin create-portal` prints a one-time link: whoever follows it chooses their
    address and password and is the new portal's admin; the link then is spent."""
    printed = web_server.cli("admin", "create-portal", "--name", "Linked Ltd",
                             "--base-url", web_server.base_url)
    assert set(printed) == {"portal_id", "bcc_address", "admin_token", "sign_in_link"}
    link = printed["sign_in_link"]
    assert link.startswith(f"{web_server.base_url}/link?token=")
    owner, address = browsers.new(), unique("owner")
    page = owner.get(link)
    assert page.status_code == 200 and "Linked Ltd" in page.text
    done = owner.post("/link", data={"csrf": csrf_of(page.text), "email": address,
                                     "token": link.split("token=")[1], "name": "Olive Owner",
                                     "password": PASSWORD})
    assert done.status_code == 303
    setup = owner.get("/setup").text
    assert printed["bcc_address"].split("@")[0] in setup and f"{address} (admin)" in setup
    assert browsers.new().get(link).status_code == 410


def test_over_tls_the_cookies_are_secure(tmp_path: Path) -> None:
    """Served over HTTPS, the session and CSRF cookies are also Secure."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(cafile=str(cert))
    server = Server(tmp_path / "srv", extra_args=("--tls-cert", str(cert), "--tls-key", str(key)))
    server.start(scheme="https", verify=context)
    try:
        account = web_account(server, unique("secure"))
        base = f"https://127.0.0.1:{server.http_port}"
        with httpx.Client(base_url=base, verify=context, timeout=30) as browser:
            page = browser.get("/sign-in")
            answer = browser.post("/sign-in", data={
                "csrf": csrf_of(page.text), "email": account.email, "password": PASSWORD})
            assert answer.status_code == 303
            cookies = [*page.headers.get_list("set-cookie"),
                       *answer.headers.get_list("set-cookie")]
            names = sorted(c.split("=")[0] for c in cookies)
            assert names == ["il_csrf", "il_session"]
            for cookie in cookies:
                attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
                assert {"secure", "httponly", "samesite=lax"} <= attributes, cookie
    finally:
        server.stop()


def test_a_user_makes_and_revokes_api_tokens_on_a_page(
        browsers: Browsers, web_server: Server) -> None:
    """A token made on the page is shown once and works on the API; revoked there, it
    stops at once. Another user's token cannot be revoked from a user's page."""
    account = web_account(web_server, unique("tokens"), role=Role.USER)
    browser = browsers.new(account)
    made = browser.post("/tokens", data={"csrf": csrf_of(browser.get("/tokens").text),
                                         "name": "laptop script"})
    assert made.status_code == 201
    found = re.search(r'<code id="token-secret">(ilu_[^<]+)</code>', made.text)
    assert found, made.text
    with web_server.api(found.group(1)) as api:
        assert api.get("/api/v1/me").status_code == 200
        token_id = next(t["id"] for t in api.get("/api/v1/tokens").json()["items"]
                        if t["name"] == "laptop script")
        listed = browser.get("/tokens").text
        assert "laptop script" in listed and found.group(1) not in listed
        other = web_account(web_server, unique("other"), role=Role.USER)
        with web_server.api(other.portal.user_token) as theirs:
            their_id = theirs.get("/api/v1/tokens").json()["items"][0]["id"]
        token = csrf_of(listed)
        assert browser.post(f"/tokens/{their_id}/revoke", data={"csrf": token}
                            ).status_code == 404
        revoked = browser.post(f"/tokens/{token_id}/revoke", data={"csrf": token})
        assert revoked.status_code == 303
        assert api.get("/api/v1/me").status_code == 401
    with web_server.api(other.portal.user_token) as theirs:
        assert theirs.get("/api/v1/me").status_code == 200
