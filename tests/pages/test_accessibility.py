"""axe-core (from the npm registry, scripts/axe-for-tests.sh) in the real Chromium, on
every page, at desktop and at phone width: no serious or critical violation."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.pages.conftest import WebAccount, unique, web_account
from tests.pages.test_browser import a_message, follow, send, sign_in
from tests.support.server import Server

ROOT = Path(__file__).resolve().parents[2]


# The elements that reach past the window's right edge, as "tag#id.class": [] when none.
_WIDER_THAN_THE_WINDOW = """
    if (document.documentElement.scrollWidth <= window.innerWidth) return [];
    return [...document.body.querySelectorAll('*')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth)
        .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                  + (e.className ? '.' + String(e.className).split(' ').join('.') : ''))
        .slice(0, 5);
"""


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe.min.js: from INBOXLOG_TEST_AXE (make test), else installed now."""
    path = os.environ.get("INBOXLOG_TEST_AXE") or subprocess.run(
        [str(ROOT / "scripts" / "axe-for-tests.sh")], check=True, capture_output=True,
        text=True).stdout.strip()
    return Path(path).read_text()


def serious_violations(browser: webdriver.Chrome, source: str) -> list[dict[str, Any]]:
    """axe's serious and critical findings on the page shown (run through the
    driver, which the page's CSP does not govern)."""
    browser.execute_script(source)
    result: dict[str, Any] = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r), e => done({error: String(e)}));")
    assert "error" not in result, result
    return [{"id": v["id"], "impact": v["impact"],
             "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.fixture
def seeded(web_server: Server) -> tuple[WebAccount, str]:
    """An account with one logged email (so the contact and thread pages exist)."""
    rep = web_account(web_server, unique("axe"))
    contact = f"axe.{rep.portal.portal_id}@customer.example"
    send(web_server, a_message(rep.email, contact, "Accessible subject",
                               html="<p>Hello <b>there</b></p>"), rep.portal.bcc_address)
    return rep, contact


@pytest.mark.parametrize("width", [1280, 390])
def test_no_serious_accessibility_violations(browser: webdriver.Chrome, web_server: Server,
                                             seeded: tuple[WebAccount, str],
                                             axe_source: str, width: int) -> None:
    """Every page, signed out and in, at desktop and at phone width."""
    rep, contact = seeded
    browser.set_window_size(width, 900)
    try:
        found: dict[str, list[dict[str, Any]]] = {}
        browser.delete_all_cookies()
        for path in ("/sign-in", "/password-reset"):
            browser.get(web_server.base_url + path)
            found[path] = serious_violations(browser, axe_source)
        sign_in(browser, web_server, rep)
        browser.get(f"{web_server.base_url}/contacts?q={contact}")
        follow(browser, browser.find_element(By.CSS_SELECTOR, "#contacts a"))
        contact_page = browser.current_url.removeprefix(web_server.base_url)
        follow(browser, browser.find_element(By.CSS_SELECTOR, "#timeline li > a"))
        thread_page = browser.current_url.removeprefix(web_server.base_url).split("#")[0]
        for path in ("/setup", "/contacts", contact_page, thread_page, "/not-logged", "/team",
                     "/tokens", "/password", "/tracking", "/inboxes", "/search?q=accessible",
                     "/search?q=x&after=never",
                     "/contacts/999999999"):
            browser.get(web_server.base_url + path)
            found[path] = serious_violations(browser, axe_source)
            # Readable at this width: nothing wider than the window.
            assert browser.execute_script(_WIDER_THAN_THE_WINDOW) == [], path
        assert {p: v for p, v in found.items() if v} == {}
    finally:
        browser.set_window_size(1280, 900)
