"""A ticket reply the team mailbox's SMTP server refuses, sent from the ticket page in
Chromium: the page says the mailbox's error (its code and the server's reply, as the
API does), not the relay's generic failure, and nothing is logged on the ticket."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import make_msgid

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.pages.conftest import chromium
from tests.pages.test_browser import follow, sign_in
from tests.pages.test_tickets import enable_login
from tests.support.mail import message
from tests.support.server import ClockedServer
from tests.support.team_mailbox import TeamMailbox


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    driver = chromium()
    yield driver
    driver.quit()


def test_the_page_shows_the_mailbox_servers_refusal(
        browser: webdriver.Chrome, inbox_server: ClockedServer,
        team: TeamMailbox) -> None:
    team.connect()
    ticket = team.first_ticket(message(
        sender="ghost@refused.example", to=team.address, subject="Hello?",
        message_id=make_msgid(domain="refused.example")))
    agent = enable_login(inbox_server, team.desk.account, team.desk.agents[0])
    sign_in(browser, inbox_server, agent)
    browser.get(f"{inbox_server.base_url}/tickets/{ticket['id']}")
    browser.find_element(By.ID, "reply-text").send_keys("Hi there")
    follow(browser, browser.find_element(By.ID, "send-reply"))
    shown = browser.find_element(By.TAG_NAME, "main").text
    assert "team mailbox did not send the reply" in shown, shown
    assert "send_rejected" in shown and "550" in shown, shown
    assert "mail relay" not in shown
    assert len(team.desk.ticket(ticket["id"])["emails"]) == 1
