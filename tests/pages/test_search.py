"""The search page: the header's box on every signed-in page, the filters, highlighted
snippets (escaped, marked with core's offsets), cursor paging, and the result leading
to its thread; in Chromium against `inboxlog serve`, and through the port with httpx."""

from __future__ import annotations

import re
import smtplib
import time

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from extension_api.pages.search import Piece, pieces
from tests.pages.conftest import Browsers, WebAccount, unique, web_account
from tests.pages.test_browser import a_message, follow, no_dialog, send, sign_in, wait
from tests.support.server import Server


@pytest.fixture
def rep(web_server: Server) -> WebAccount:
    return web_account(web_server, unique("searcher"))


def logged(client: httpx.Client, q: str, count: int, timeout: float = 15) -> str:
    """The search page for ``q`` once it finds ``count`` emails (ingest is async)."""
    deadline = time.monotonic() + timeout
    while True:
        page = client.get("/search", params={"q": q})
        assert page.status_code == 200, page.text
        if page.text.count("data-email=") == count or time.monotonic() > deadline:
            assert page.text.count("data-email=") == count, page.text
            return page.text
        time.sleep(0.1)


def test_pieces_follow_the_offsets() -> None:
    assert pieces("a Müller b", [(2, 8)]) == [
        Piece("a ", False), Piece("Müller", True), Piece(" b", False)]
    assert pieces("😀 rabatt", [(2, 8)]) == [Piece("😀 ", False), Piece("rabatt", True)]
    assert pieces("abc", [(0, 1), (0, 2), (2, 9)]) == [Piece("a", True), Piece("bc", False)]


def test_search_from_the_header_to_the_thread_and_xss_never_runs(
        browser: webdriver.Chrome, web_server: Server, rep: WebAccount) -> None:
    """Mail logged over SMTP is found from the header's box on another page; the
    snippet marks the word; the hostile subject and body show as text; the result
    opens its thread."""
    contact = f"olga.{rep.portal.portal_id}@kunde.example"
    hostile = '<img src=x onerror="window.__xss=1;alert(31)"> Rabatt'
    send(web_server, a_message(
        rep.email, contact, hostile,
        text="Wir haben uns auf den Rabatt geeinigt. <script>window.__xss=1</script>",
        html="<p>Wir haben uns auf den <b>Rabatt</b> geeinigt.</p>"
             '<img src=x onerror="window.__xss=1;alert(32)">'), rep.portal.bcc_address)
    sign_in(browser, web_server, rep)
    browser.get(f"{web_server.base_url}/tracking")
    box = browser.find_element(By.ID, "top-search")
    deadline = time.monotonic() + 15
    while True:
        box.send_keys("geeinigt")
        follow(browser, browser.find_element(By.CSS_SELECTOR, ".quick-search button"))
        if browser.find_elements(By.CSS_SELECTOR, "#results li") or time.monotonic() > deadline:
            break
        box = browser.find_element(By.ID, "top-search")
        box.clear()
        time.sleep(0.2)
    assert browser.current_url.endswith("/search?q=geeinigt")
    [result] = browser.find_elements(By.CSS_SELECTOR, "#results li")
    snippet = result.find_element(By.CSS_SELECTOR, ".snippet")
    assert "Wir haben uns auf den Rabatt geeinigt." in snippet.text
    assert "<script>window.__xss=1</script>" in snippet.text  # shown, as text
    assert [m.text for m in snippet.find_elements(By.TAG_NAME, "mark")] == ["geeinigt"]
    subject = result.find_element(By.CSS_SELECTOR, "a.subject")
    assert subject.text == hostile
    assert no_dialog(browser)
    assert browser.execute_script("return window.__xss === undefined")

    # The subject's own word is marked too; then the result opens the thread.
    browser.find_element(By.ID, "search-q").clear()
    browser.find_element(By.ID, "search-q").send_keys("rabatt")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#search-form button"))
    subject = browser.find_element(By.CSS_SELECTOR, "#results a.subject")
    assert [m.text for m in subject.find_elements(By.TAG_NAME, "mark")] == ["Rabatt"]
    follow(browser, subject)
    wait(browser).until(lambda b: "/threads/" in b.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("<img src=x")
    text = browser.find_element(By.CSS_SELECTOR, "article pre").get_attribute("textContent")
    assert "Rabatt geeinigt" in (text or "")
    assert no_dialog(browser)
    assert browser.execute_script("return window.__xss === undefined")


def _ids(page: str) -> list[str]:
    return re.findall(r'data-email="(\d+)"', page)


def test_filters_and_paging(web_server: Server, browsers: Browsers, rep: WebAccount) -> None:
    """Each filter narrows the answer; a page of 20 leads to the next with its cursor;
    a wrong date says why."""
    word = f"zebra{rep.portal.portal_id}"
    anna = f"anna.{rep.portal.portal_id}@acme{rep.portal.portal_id}.example"
    for index in range(21):
        sent = a_message(rep.email, f"p{index}.{anna}" if index else anna,
                         f"{word} number {index}")
        sent["Message-ID"] = f"<{word}.{index}@ourco.example>"
        send(web_server, sent, rep.portal.bcc_address)
    with_file = a_message(f"Anna <{anna}>", rep.email, f"Re: {word} with a file")
    with_file["In-Reply-To"] = f"<{word}.0@ourco.example>"  # a reply: its thread is logged
    with_file.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf",
                             filename="Angebot.pdf")
    with smtplib.SMTP("127.0.0.1", web_server.smtp_port, timeout=30) as smtp:  # as the user
        smtp.send_message(with_file, from_addr=rep.email, to_addrs=[rep.portal.bcc_address])
    client = browsers.new(rep)
    for index in range(21):  # every one of them logged before paging
        logged(client, f'{word} "number {index}"', 1)
    logged(client, f"{word} -number", 1)
    first = client.get("/search", params={"q": word}).text
    more = re.search(r'id="more" href="([^"]+)"', first)
    assert more, first
    second = client.get(more.group(1).replace("&amp;", "&"))
    assert len(_ids(second.text)) == 2 and not set(_ids(second.text)) & set(_ids(first))
    assert 'id="more"' not in second.text

    def found(**filters: str) -> list[str]:
        page = client.get("/search", params={"q": word, **filters})
        assert page.status_code == 200, page.text
        return _ids(page.text)

    [incoming] = found(direction="incoming")
    assert found(attachments="yes") == [incoming]
    assert incoming not in found(attachments="no")
    assert incoming in found(contact=anna) and len(found(contact=anna)) == 2
    contacts = client.get("/contacts", params={"q": anna}).text
    [contact_page] = [page for page in (client.get(path).text for path in re.findall(
        r'href="(/contacts/\d+)"', contacts)) if f'id="contact-email">{anna}<' in page]
    link = re.search(r'id="search-contact" href="([^"]+)"', contact_page)
    assert link, contact_page  # the contact's page links to all their email, no words
    assert sorted(_ids(client.get(link.group(1).replace("&amp;", "&")).text)) == sorted(
        found(contact=anna))
    assert len(found(company=f"acme{rep.portal.portal_id}.example", direction="outgoing")) == 20
    assert found(source="sync") == []
    assert found(before="2000-01-01") == [] and len(found(after="2000-01-01")) == 20
    assert "no-results" in client.get("/search", params={"q": word, "source": "sync"}).text
    wrong = client.get("/search", params={"q": word, "after": "yesterday"})
    assert wrong.status_code == 422 and "after must be a date" in wrong.text
    nobody = client.get("/search", params={"q": word, "contact": "nobody@x.example"})
    assert "No contact has the address" in nobody.text and not _ids(nobody.text)
    assert client.get("/search", params={"q": word, "direction": "sideways"}).status_code == 422


def test_signed_out_search_goes_to_sign_in(web_server: Server) -> None:
    answer = httpx.get(f"{web_server.base_url}/search?q=x", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=%2Fsearch%3Fq%3Dx"


