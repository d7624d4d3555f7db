"""How the ticket page words its log, in Chromium: a routing rule that named a
colleague outside the ticket's inbox left it unassigned, and the log says so (not
"Assigned to nobody")."""

from __future__ import annotations

from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.pages.test_browser import sign_in
from tests.pages.test_tickets import make_desk
from tests.support.server import Server


def test_a_rule_naming_someone_outside_the_inbox_is_said_in_the_log(
        browser: webdriver.Chrome, web_server: Server) -> None:
    desk = make_desk(web_server)
    with desk.api() as api:
        rule = api.post("/api/v1/routing-rules", json={
            "conditions": [], "actions": [{"type": "assign_user",
                                           "user_id": desk.outsider.portal.user_id}]})
    assert rule.status_code == 201, rule.text
    ticket_id, _ = desk.open_ticket("Salary list attached")
    assert desk.ticket(ticket_id)["assignee_user_id"] is None
    sign_in(browser, web_server, desk.agents[0])
    browser.get(f"{web_server.base_url}/tickets/{ticket_id}")
    log = browser.find_element(By.ID, "conversation").text
    assert "Not assigned (a routing rule named someone outside the inbox)" in log, log
    assert "Assigned to nobody" not in log
