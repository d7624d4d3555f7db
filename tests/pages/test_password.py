"""Changing one's password while signed in, through the port: the current password is
required, this browser stays signed in, every other session ends and the extension's
tokens are revoked; deliberate tokens keep working."""

from __future__ import annotations

import pytest

from core.types import Role
from tests.pages.conftest import Browsers, WebAccount, csrf_of, unique, web_account
from tests.pages.test_extension_grants import authorize, exchange, pkce
from tests.support.server import Server

NEW = "a changed passphrase indeed"


def test_changing_the_password_ends_the_other_sessions_and_extension_tokens(
        browsers: Browsers, web_server: Server) -> None:
    """A wrong current password is a 401, a short new one a 422, neither changes
    anything; the change keeps this browser signed in and ends the other one; the
    extension's token stops, the CLI's works; only the new password signs in."""
    account = web_account(web_server, unique("changer"), role=Role.USER)
    here, elsewhere = browsers.new(account), browsers.new(account)
    verifier, challenge = pkce()
    granted = exchange(web_server, authorize(here, challenge)["code"][0],
                       verifier).json()["access_token"]
    page = here.get("/tokens")
    assert 'href="/password"' in page.text
    form = here.get("/password")
    assert form.status_code == 200 and 'id="password-form"' in form.text
    token = csrf_of(form.text)
    wrong = here.post("/password", data={"csrf": token, "current": "not it at all",
                                         "password": NEW})
    assert wrong.status_code == 401 and "current password is wrong" in wrong.text
    short = here.post("/password", data={"csrf": token, "current": account.password,
                                         "password": "short"})
    assert short.status_code == 422 and "at least 10 characters" in short.text
    assert elsewhere.get("/setup").status_code == 200  # nothing changed yet
    done = here.post("/password", data={"csrf": token, "current": account.password,
                                        "password": NEW})
    assert done.status_code == 200 and 'data-state="password-changed"' in done.text
    assert here.get("/setup").status_code == 200
    assert elsewhere.get("/setup").status_code == 303
    for secret, status in ((granted, 401), (account.portal.user_token, 200)):
        with web_server.api(secret) as api:
            assert api.get("/api/v1/me").status_code == status
    with pytest.raises(AssertionError):
        browsers.new(account)
    browsers.new(WebAccount(account.portal, account.email, NEW))


def test_the_password_form_needs_a_session(browsers: Browsers) -> None:
    """Signed out, /password asks to sign in first; posting it goes nowhere."""
    browser = browsers.new()
    assert browser.get("/password").headers["location"].startswith("/sign-in?next=")
    token = csrf_of(browser.get("/sign-in").text)
    posted = browser.post("/password", data={"csrf": token, "current": "x", "password": NEW})
    assert posted.status_code == 303 and posted.headers["location"].startswith("/sign-in")
