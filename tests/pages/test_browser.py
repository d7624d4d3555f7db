"""The pages in a real Chromium against a real `inboxlog serve`: sign in, the logging
address, a test email arriving live, a contact's timeline, a thread, moving an email,
why a message was not logged, sign out."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import formataddr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import update

from core.storage.db import Database, sqlite_url
from core.storage.models import Email
from tests.pages.conftest import WebAccount, unique, web_account
from tests.support.server import Server, run_coroutine
from tests.support.xss import XSS_HTML


def sign_in(browser: webdriver.Chrome, server: Server, account: WebAccount) -> None:
    browser.delete_all_cookies()
    browser.get(f"{server.base_url}/sign-in")
    browser.find_element(By.ID, "email").send_keys(account.email)
    browser.find_element(By.ID, "password").send_keys(account.password)
    browser.find_element(By.CSS_SELECTOR, "#password-form button[type=submit]").click()
    WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "sign-out")))


def follow(browser: webdriver.Chrome, element: WebElement) -> None:
    """Click what navigates, and wait until the next page replaced this one."""
    with next_page(browser):
        element.click()


@contextmanager
def next_page(browser: webdriver.Chrome, timeout: float = 30) -> Iterator[None]:
    """Wait, after the block, until a new document has replaced this one and loaded.

    A mark on this document's window, not ``staleness_of`` an element: Chromium may
    answer a question about an element of a document being torn down with "Node with
    given id does not belong to the document", which is neither stale nor present."""
    browser.execute_script("window.__inboxlogOldPage = true")
    yield

    def replaced(b: webdriver.Chrome) -> bool:
        return bool(b.execute_script(
            "return window.__inboxlogOldPage === undefined"
            " && document.readyState === 'complete'"))
    WebDriverWait(browser, timeout, ignored_exceptions=(WebDriverException,)).until(replaced)


def wait(browser: webdriver.Chrome, timeout: float = 15) -> WebDriverWait[webdriver.Chrome]:
    return WebDriverWait(browser, timeout)


def send(server: Server, message: EmailMessage, bcc: str) -> None:
    """Through the server's SMTP port, as a mail client BCCing ``bcc`` would."""
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
        smtp.send_message(message, from_addr=message["From"].addresses[0].addr_spec,
                          to_addrs=[message["To"], bcc])


def a_message(sender: str, to: str, subject: str, text: str = "Hello there.",
              html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


@pytest.fixture
def rep(web_server: Server) -> WebAccount:
    return web_account(web_server, unique("rep"))


def test_sign_in_test_email_timeline_thread_move_sign_out(
        browser: webdriver.Chrome, web_server: Server, rep: WebAccount) -> None:
    """A user signs in, sees their logging address, watches a test email arrive, opens
    the contact's timeline and the thread, splits an email off, and signs out."""
    sign_in(browser, web_server, rep)
    browser.get(f"{web_server.base_url}/setup")
    address = browser.find_element(By.ID, "logging-address").text
    assert address == rep.portal.bcc_address
    browser.find_element(By.CSS_SELECTOR, "button[data-copy]").click()
    wait(browser).until(lambda b: b.find_element(By.ID, "copy-status").text != "")

    contact = f"dana.{rep.portal.portal_id}@customer.example"
    send(web_server, a_message(rep.email, contact, "Test from the setup page"), address)
    arrived = wait(browser).until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, "#arrived li a")))
    assert arrived.text == "Test from the setup page"
    assert "arrived" in browser.find_element(By.ID, "waiting").text

    reply = a_message(rep.email, contact, "Second email, same contact")
    send(web_server, reply, address)
    browser.get(f"{web_server.base_url}/contacts?q=dana.{rep.portal.portal_id}")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#contacts a"))
    assert browser.find_element(By.ID, "contact-email").text == contact
    subjects = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#timeline li > a")]
    assert subjects == ["Second email, same contact", "Test from the setup page"]

    follow(browser, browser.find_element(By.LINK_TEXT, "Test from the setup page"))
    article = browser.find_element(By.CSS_SELECTOR, "article.email")
    assert "Started this thread." in article.find_element(By.CSS_SELECTOR, ".reason").text
    assert "Hello there." in article.find_element(By.CSS_SELECTOR, "pre").text
    first_thread = browser.current_url.split("/threads/")[1].split("#")[0]

    # Move the second email onto the first one's thread, then split it off again.
    browser.get(f"{web_server.base_url}/contacts?q=dana.{rep.portal.portal_id}")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#contacts a"))
    follow(browser, browser.find_element(By.LINK_TEXT, "Second email, same contact"))
    article = browser.find_element(By.CSS_SELECTOR, "article.email")
    article.find_element(By.CSS_SELECTOR, ".move summary").click()
    article.find_element(By.CSS_SELECTOR, "input[name=find]").send_keys("nothing like it")
    follow(browser, article.find_element(By.XPATH, ".//button[.='Find']"))
    article = browser.find_element(By.CSS_SELECTOR, "article.email")
    assert "No other thread" in article.find_element(By.CSS_SELECTOR, "[id^=no-targets]").text
    search = article.find_element(By.CSS_SELECTOR, "input[name=find]")
    search.clear()
    search.send_keys("SETUP")  # the contact's threads whose subject has the words
    follow(browser, article.find_element(By.XPATH, ".//button[.='Find']"))
    article = browser.find_element(By.CSS_SELECTOR, "article.email")
    choices = article.find_elements(By.CSS_SELECTOR, ".move-to label")
    assert [c.find_element(By.CSS_SELECTOR, ".subject").text for c in choices] == [
        "Test from the setup page"]
    choices[0].click()
    follow(browser, article.find_element(By.XPATH, ".//button[.='Move']"))
    wait(browser).until(lambda b: f"/threads/{first_thread}" in b.current_url)
    reasons = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "article .reason")]
    assert reasons == ["Started this thread.", "Moved here by a user of your portal."]

    follow(browser, browser.find_element(By.ID, "sign-out"))
    message = wait(browser).until(ec.presence_of_element_located((By.ID, "message")))
    assert message.get_attribute("data-state") == "signed-out"
    browser.get(f"{web_server.base_url}/setup")
    assert "/sign-in?next=%2Fsetup" in browser.current_url


def test_a_refused_message_is_in_why_not_logged(
        browser: webdriver.Chrome, web_server: Server, rep: WebAccount) -> None:
    """Mail from someone who is not a user is refused and shows, in words, on the page."""
    stranger = f"stranger.{rep.portal.portal_id}@elsewhere.example"
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(web_server, a_message(stranger, "x@customer.example", "Hi"), rep.portal.bcc_address)
    assert refused.value.smtp_code == 550
    sign_in(browser, web_server, rep)
    browser.get(f"{web_server.base_url}/not-logged")
    browser.find_element(By.ID, "sender").send_keys("stranger.")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "main form[role=search] button"))
    entries = browser.find_elements(By.CSS_SELECTOR, "#ingest-log li")
    assert len(entries) == 1
    assert entries[0].get_attribute("data-code") == "not_a_user"
    assert stranger in entries[0].text
    assert "not a user of your portal" in entries[0].text
    assert "What to do:" in entries[0].text


def no_dialog(browser: webdriver.Chrome) -> bool:
    try:
        browser.switch_to.alert.dismiss()
    except NoAlertPresentException:
        return True
    return False


def test_stored_xss_never_runs(browser: webdriver.Chrome, web_server: Server,
                               rep: WebAccount) -> None:
    """The corpus of stored-XSS payloads, in an email's HTML, subject and sender name,
    rendered in the real thread and timeline pages: no dialog, the flag never set."""
    payload = "".join(XSS_HTML)
    name = '"><script>window.__xss=1;alert(20)</script>'
    message = a_message(formataddr((name, rep.email)), "xss@customer.example",
                        '<img src=x onerror="window.__xss=1;alert(21)">', html=payload)
    send(web_server, message, rep.portal.bcc_address)
    sign_in(browser, web_server, rep)
    browser.get(f"{web_server.base_url}/contacts?q=xss@customer")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#contacts a"))
    assert no_dialog(browser)
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#timeline li > a"))
    frame = browser.find_element(By.CSS_SELECTOR, "iframe.body")
    assert frame.get_attribute("sandbox") == ""
    browser.switch_to.frame(frame)
    for link in browser.find_elements(By.TAG_NAME, "a"):
        link.click()
    browser.switch_to.default_content()
    browser.get(browser.current_url.split("#")[0] + "?images=1")  # the looser CSP too
    assert no_dialog(browser)
    assert browser.execute_script("return window.__xss === undefined")
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("<img src=x")


def test_scripts_in_stored_html_cannot_run_even_past_the_sanitizer(
        browser: webdriver.Chrome, web_server: Server, rep: WebAccount) -> None:
    """Were the sanitizer ever bypassed, the frame still runs nothing: HTML with live
    script and handlers, written straight into the database, shows inert."""
    send(web_server, a_message(rep.email, "raw@customer.example", "Raw HTML",
                               html="<p>placeholder</p>"), rep.portal.bcc_address)
    hostile = ('<p id=raw>raw</p><script>alert(1);parent.__xss=1</script>'
               '<img src=x onerror="alert(2)"><svg onload="alert(3)"></svg>')

    async def overwrite() -> None:
        db = Database(sqlite_url(web_server.data_dir / "inboxlog.db"))
        try:
            async with db.transaction() as session:
                await session.execute(update(Email).where(
                    Email.portal_id == rep.portal.portal_id, Email.subject == "Raw HTML",
                ).values(html=hostile))
        finally:
            await db.dispose()

    run_coroutine(overwrite)
    sign_in(browser, web_server, rep)
    browser.get(f"{web_server.base_url}/contacts?q=raw@customer")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#contacts a"))
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#timeline li > a"))
    frame = browser.find_element(By.CSS_SELECTOR, "iframe.body")
    browser.switch_to.frame(frame)
    assert browser.find_element(By.ID, "raw").text == "raw"  # the HTML itself is there
    browser.switch_to.default_content()
    assert no_dialog(browser)
    assert browser.execute_script("return window.__xss === undefined")


class _Beacon(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.end_headers()
        self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def beacon() -> Iterator[tuple[str, list[str]]]:
    """An image server on loopback that records every fetch (a sender's tracker)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Beacon)
    _Beacon.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Beacon.hits
    server.shutdown()
    server.server_close()
    thread.join()


def test_remote_images_load_only_when_asked(
        browser: webdriver.Chrome, web_server: Server, rep: WebAccount,
        beacon: tuple[str, list[str]]) -> None:
    """A remote image (which would tell its sender the reader's IP) is not fetched when
    the thread opens; after "Show remote images" it is."""
    url, hits = beacon
    # The user's own signature carries a remote logo, as many do.
    send(web_server, a_message(rep.email, "pat@customer.example", "Re: Newsletter",
                               html=f'<p>Thanks</p><img src="{url}/reply.gif" alt="logo">'),
         rep.portal.bcc_address)
    sign_in(browser, web_server, rep)
    browser.get(f"{web_server.base_url}/contacts?q=pat@customer")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#contacts a"))
    follow(browser, browser.find_element(By.LINK_TEXT, "Re: Newsletter"))
    browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, "iframe.body"))
    assert browser.find_element(By.TAG_NAME, "p").text == "Thanks"
    browser.switch_to.default_content()
    time.sleep(0.5)
    assert hits == []
    follow(browser, browser.find_element(By.ID, "show-images"))
    wait(browser).until(lambda b: hits == ["/reply.gif"])
    assert browser.find_element(By.ID, "images-on")


def test_an_open_shows_live_on_any_page(browser: webdriver.Chrome, web_server: Server,
                                        rep: WebAccount) -> None:
    """While the user reads their contacts, a recipient opens a tracked email: the page
    says so, with a link to the email."""
    sign_in(browser, web_server, rep)
    browser.get(f"{web_server.base_url}/contacts")
    with web_server.api(rep.portal.user_token) as api:
        send = api.post("/api/v1/tracked-sends", json={
            "to": ["olga@customer.example"], "subject": "Our offer",
            "html": "<p>Here it is.</p>"}).json()
    reader = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
              "Gecko) Chrome/131.0.0.0 Safari/537.36", "X-Forwarded-For": "203.0.113.7"}
    assert httpx.get(send["pixel_url"], headers=reader).status_code == 200
    notice = wait(browser).until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, "#notices .notice[data-type=open]")))
    assert notice.text.startswith("Your email was opened")


def test_a_tracked_sends_chart_after_pixel_hits(browser: webdriver.Chrome,
                                                web_server: Server, rep: WebAccount) -> None:
    """The sender's own open, a person's, and a HEAD request (a machine): the chart
    draws them, and each hit says who it was and why; only the person counts."""
    with web_server.api(rep.portal.user_token) as api:
        send = api.post("/api/v1/tracked-sends", json={
            "to": ["chart@customer.example"], "subject": "Chart me",
            "html": "<p>Hi</p>"}).json()
    chrome = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")
    httpx.get(send["pixel_url"], headers={"User-Agent": chrome})  # the sender, from here
    httpx.get(send["pixel_url"], headers={"User-Agent": chrome,
                                          "X-Forwarded-For": "203.0.113.7"})
    httpx.head(send["pixel_url"], headers={"User-Agent": chrome,
                                           "X-Forwarded-For": "203.0.113.7"})
    sign_in(browser, web_server, rep)
    browser.get(f"{web_server.base_url}/tracking")
    follow(browser, browser.find_element(By.LINK_TEXT, "Chart me"))

    def three_hits(b: webdriver.Chrome) -> bool:
        if len(b.find_elements(By.CSS_SELECTOR, "#hits tbody tr")) == 3:
            return True
        b.refresh()  # the recorder writes hits in batches
        return False

    wait(browser).until(three_hits)
    verdicts = [r.get_attribute("data-verdict")
                for r in browser.find_elements(By.CSS_SELECTOR, "#hits tbody tr")]
    assert verdicts == ["sender", "person", "machine"]
    machine = browser.find_element(By.CSS_SELECTOR, "#hits tr[data-verdict=machine]")
    assert "HEAD" in machine.text and "not counted" in machine.text
    assert browser.find_element(By.ID, "totals").text.startswith("1 open and 0 clicks")
    parts = {r.get_attribute("class") for r in
             browser.find_elements(By.CSS_SELECTOR, "#chart rect")}
    assert parts == {"opens", "machine", "own"}
