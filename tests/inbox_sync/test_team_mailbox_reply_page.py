"""A ticket reply the team mailbox's SMTP server refuses, sent from the ticket page in
Chromium: the page says the mailbox's error (its code and the server's reply, as the
API does), not the relay's generic failure, and nothing is logged on the ticket."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import make_msgid

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.inbox_sync.test_team_mailbox import TeamMailbox
from tests.pages.conftest import chromium
from tests.pages.test_browser import follow, sign_in
from tests.pages.test_tickets import enable_login
from tests.support.dovecot import Dovecot
from tests.support.mail import message
from tests.support.server import ClockedServer
from tests.support.smtp_recorder import SmtpRecorder


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    driver = chromium()
    yield driver
    driver.quit()


def test_the_page_shows_the_mailbox_servers_refusal(
        browser: webdriver.Chrome, dovecot: Dovecot, recorder: SmtpRecorder,
        inbox_server: ClockedServer) -> None:
    team = TeamMailbox(dovecot, recorder, inbox_server)
    with team.api() as api:
        connected = api.post("/api/v1/inboxes", json=team.body())
    assert connected.status_code == 201, connected.text
    team.inbox_id = connected.json()["id"]
    team.arrives(message(sender="ghost@refused.example", to=team.address, subject="Hello?",
                         message_id=make_msgid(domain="refused.example")))
    team.synced(lambda: len(team.tickets()) == 1)
    [ticket] = team.tickets()
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
