"""axe-core in the real Chromium on the ticket pages and the reports page, at desktop and
at phone width (as tests/pages/test_accessibility.py does for the others): no serious or
critical violation, nothing wider than the window; a ticket shown with an HTML email, a
note, a change and the collision warning."""

from __future__ import annotations

from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.pages.conftest import Browsers, csrf_of
from tests.pages.test_accessibility import (  # noqa: F401 (axe_source: a fixture)
    _WIDER_THAN_THE_WINDOW,
    axe_source,
    serious_violations,
)
from tests.pages.test_browser import sign_in
from tests.pages.test_tickets import Desk, make_desk
from tests.support.server import Server


@pytest.fixture(scope="module")
def shown(web_server: Server) -> tuple[Desk, int]:
    """A desk whose ticket has an HTML email (and an assignment, by round-robin)."""
    desk = make_desk(web_server)
    ticket_id, _ = desk.open_ticket("Accessible ticket",
                                    html="<p>Our <b>printer</b> is on fire.</p>")
    return desk, ticket_id


@pytest.mark.parametrize("width", [1280, 390])
def test_ticket_and_report_pages_have_no_serious_violations(
        browser: webdriver.Chrome, browsers: Browsers, web_server: Server,
        shown: tuple[Desk, int], axe_source: str, width: int) -> None:  # noqa: F811
    """/tickets, a ticket (another agent on it), /reports, and their error pages."""
    desk, ticket_id = shown
    ben = browsers.new(desk.agents[1])
    token = csrf_of(ben.get(f"/tickets/{ticket_id}").text)
    assert ben.post(f"/tickets/{ticket_id}/notes", data={
        "csrf": token, "text": "Checked the logs."}).status_code == 303
    browser.set_window_size(width, 900)
    try:
        sign_in(browser, web_server, desk.agents[0])
        found: dict[str, list[dict[str, Any]]] = {}
        for path in ("/tickets", f"/tickets/{ticket_id}", "/reports",
                     "/tickets?status=lost", "/tickets/999999999", "/reports?from=x"):
            browser.get(web_server.base_url + path)
            if path == f"/tickets/{ticket_id}":
                WebDriverWait(browser, 10).until(
                    lambda b: b.find_element(By.ID, "collision").is_displayed())
                assert browser.find_elements(By.CSS_SELECTOR, "iframe.body")
                assert browser.find_elements(By.CSS_SELECTOR, ".entry-note")
            found[path] = serious_violations(browser, axe_source)
            assert browser.execute_script(_WIDER_THAN_THE_WINDOW) == [], path
        assert {p: v for p, v in found.items() if v} == {}
    finally:
        browser.set_window_size(1280, 900)
