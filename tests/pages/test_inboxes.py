"""Connecting an inbox on its page, in Chromium, against the test Dovecot and an SMTP
submission server: each failure says what it is and what to do; then it connects and
shows its folders."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.pages.conftest import web_account
from tests.pages.test_browser import follow, next_page, sign_in, wait
from tests.support.dovecot import Dovecot
from tests.support.server import Server, free_port
from tests.support.smtp_recorder import SmtpRecorder


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    running = Dovecot([], []).start()
    yield running
    running.stop()


def fill(browser: webdriver.Chrome, password: str, imap_port: int, smtp_port: int) -> None:
    browser.find_element(By.ID, "inbox-password").send_keys(password)
    if not browser.find_element(By.ID, "imap_host").is_displayed():
        browser.find_element(By.CSS_SELECTOR, "#connect-form summary").click()
    for kind, port in (("imap", imap_port), ("smtp", smtp_port)):
        host = browser.find_element(By.ID, f"{kind}_host")
        host.clear()
        host.send_keys("127.0.0.1")
        field = browser.find_element(By.ID, f"{kind}_port")
        field.clear()
        field.send_keys(str(port))
        Select(browser.find_element(By.ID, f"{kind}_security")).select_by_value("none")
    with next_page(browser):  # the answer's page, not this one
        browser.find_element(By.CSS_SELECTOR, "#connect-form button[type=submit]").click()


def test_connect_an_inbox_and_see_its_errors(browser: webdriver.Chrome, web_server: Server,
                                            relay: SmtpRecorder, dovecot: Dovecot) -> None:
    """A wrong password and a closed port each get their own error and advice; the
    right settings connect, and after "Sync now" the inbox lists its folders."""
    address = f"box-{uuid.uuid4().hex[:10]}@ourco.example"
    password = "pw-" + uuid.uuid4().hex[:8]
    dovecot.add_user(address, password)
    relay.add_user(address, password)
    account = web_account(web_server, address)
    sign_in(browser, web_server, account)
    browser.get(f"{web_server.base_url}/inboxes")
    assert browser.find_element(By.ID, "address").get_attribute("value") == address

    fill(browser, "not-the-password", dovecot.imap_port, relay.port)
    error = wait(browser).until(lambda b: b.find_element(By.ID, "connect-error"))
    assert error.get_attribute("data-code") == "auth_rejected"
    assert "refused the user name or password" in error.text

    fill(browser, password, free_port(), relay.port)
    error = wait(browser).until(lambda b: b.find_element(By.ID, "connect-error"))
    assert error.get_attribute("data-code") == "connection_refused"
    assert "Nothing answers on that port" in error.text

    fill(browser, password, dovecot.imap_port, relay.port)
    inbox = wait(browser, 30).until(lambda b: b.find_element(By.CSS_SELECTOR, "#inboxes li"))
    assert inbox.get_attribute("data-status") == "connected"
    assert address in inbox.text
    # A sync holds the page's answer for as long as it takes: wait for the next page
    # (a question to Chromium mid-navigation can fail), then look for its notice.
    follow(browser, inbox.find_element(By.XPATH, ".//button[.='Sync now']"))
    assert browser.find_elements(By.ID, "synced"), browser.current_url
    inbox = browser.find_element(By.CSS_SELECTOR, "#inboxes li")
    roles = [f.text.split(":")[0] for f in inbox.find_elements(By.CSS_SELECTOR, ".folders li")]
    assert {"inbox", "sent"} <= set(roles)
    assert "failing" not in inbox.text

    # Disconnected from its page: the reason recorded, in words, and the event sent.
    follow(browser, inbox.find_element(By.XPATH, ".//button[.='Disconnect']"))
    inbox = browser.find_element(By.CSS_SELECTOR, "#inboxes li")
    assert inbox.get_attribute("data-status") == "disconnected"
    assert "disconnected by the user" in inbox.text
    assert "connect it anew below" in inbox.text
    assert not inbox.find_elements(By.XPATH, ".//button[.='Disconnect']")
    with web_server.api(account.portal.user_token) as api:
        [event] = [e for e in api.get("/api/v1/events").json()["items"]
                   if e["type"] == "inbox_disconnected"]
    assert event["detail"]["code"] == "disconnected_by_user"


def test_an_inbox_disconnected_elsewhere_shows_live(
        browser: webdriver.Chrome, web_server: Server, relay: SmtpRecorder,
        dovecot: Dovecot) -> None:
    """An inbox disconnected while the user has a page open (here through the API)
    appears there as a notice that leads to the inbox."""
    address = f"live-{uuid.uuid4().hex[:10]}@ourco.example"
    password = "pw-" + uuid.uuid4().hex[:8]
    dovecot.add_user(address, password)
    relay.add_user(address, password)
    account = web_account(web_server, address)
    with web_server.api(account.portal.user_token) as api:
        connected = api.post("/api/v1/inboxes", json={
            "address": address, "password": password,
            "imap": {"host": "127.0.0.1", "port": dovecot.imap_port, "security": "none"},
            "smtp": {"host": "127.0.0.1", "port": relay.port, "security": "none"}})
        assert connected.status_code == 201, connected.text
        inbox_id = connected.json()["id"]
        sign_in(browser, web_server, account)
        browser.get(f"{web_server.base_url}/tracking")
        wait(browser).until(lambda b: b.execute_script(
            "return document.body.dataset.liveAfter !== undefined"))
        time.sleep(0.5)  # the page's live feed is open
        assert api.post(f"/api/v1/inboxes/{inbox_id}/disconnect").status_code == 200
    notice = wait(browser).until(lambda b: b.find_element(
        By.CSS_SELECTOR, "#notices [data-type=inbox_disconnected]"))
    assert f"Inbox {address} was disconnected: disconnected by the user" in notice.text
    link = notice.find_element(By.TAG_NAME, "a")
    assert (link.get_attribute("href") or "").endswith(f"/inboxes#inbox-{inbox_id}")
