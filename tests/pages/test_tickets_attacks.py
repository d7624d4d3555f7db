"""Attacks on the ticket pages through the real port and in Chromium: forms without the
CSRF token (or sent cross-site), another portal's and another inbox's ids, assigning
to someone outside the inbox, and script in a subject, a sender's name, a note and a
canned response, which must stay text."""

from __future__ import annotations

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from tests.pages.conftest import Browsers, csrf_of
from tests.pages.test_browser import follow, sign_in
from tests.pages.test_tickets import Desk, make_desk
from tests.support.mail import deliver, logged_id, message
from tests.support.server import Server
from tests.support.xss import XSS_HTML

SCRIPT = "<script>window.__xss=1</script><img src=x onerror=window.__xss=1>"
ACTIONS = (("update", {"status": "closed"}), ("reply", {"text": "hi"}),
           ("notes", {"text": "hi"}), ("presence", {"state": "viewing"}),
           ("update", {"pipeline": "Taken", "stage": "taken", "tags": "taken"}),
           ("merge", {"into": "1"}))


@pytest.fixture(scope="module")
def desks(web_server: Server) -> tuple[Desk, Desk]:
    return (make_desk(web_server, canned_body=f"Hi {{{{contact.name}}}} {SCRIPT}"),
            make_desk(web_server))


def test_forms_need_the_token_and_this_site(browsers: Browsers,
                                            desks: tuple[Desk, Desk]) -> None:
    """A member's own ticket: every form without the token, with another's, or marked
    cross-site is a 403 and changes nothing."""
    desk = desks[0]
    ticket_id, _ = desk.open_ticket("Token please")
    member = browsers.new(desk.agents[0])
    token = csrf_of(member.get(f"/tickets/{ticket_id}").text)
    for action, data in ACTIONS:
        url = f"/tickets/{ticket_id}/{action}"
        assert member.post(url, data=data).status_code == 403, action
        assert member.post(url, data={**data, "csrf": "0" * 64}).status_code == 403, action
        assert member.post(url, data={**data, "csrf": token}, headers={
            "Sec-Fetch-Site": "cross-site"}).status_code == 403, action
    detail = desk.ticket(ticket_id)
    assert detail["status"] == "open"
    assert [a["kind"] for a in detail["activity"]] == ["created", "assigned"]


def test_another_portals_and_another_inboxs_ids_are_not_found(
        browsers: Browsers, desks: tuple[Desk, Desk]) -> None:
    """An agent with a good token names the other portal's ticket (404, nothing
    changed), the other inbox's canned response (404), and someone outside their
    inbox as assignee (422, nothing changed)."""
    mine, theirs = desks
    my_ticket, _ = mine.open_ticket("Mine")
    their_ticket, _ = theirs.open_ticket("Theirs")
    agent = browsers.new(mine.agents[0])
    token = csrf_of(agent.get(f"/tickets/{my_ticket}").text)
    assert agent.get(f"/tickets/{their_ticket}").status_code == 404
    for action, data in ACTIONS:
        answer = agent.post(f"/tickets/{their_ticket}/{action}", data={**data, "csrf": token})
        assert answer.status_code == 404, action
    assert theirs.ticket(their_ticket)["status"] == "open"
    assert agent.get(f"/tickets/{my_ticket}?canned={theirs.canned_id}").status_code == 404
    before = mine.ticket(my_ticket)["assignee_user_id"]
    for stranger in (mine.outsider.portal.user_id, theirs.agent_ids[0], 2**62, "x"):
        answer = agent.post(f"/tickets/{my_ticket}/update", data={
            "csrf": token, "assignee": f"user:{stranger}"})
        assert answer.status_code == 422, stranger
    assert mine.ticket(my_ticket)["assignee_user_id"] == before
    for bad in ({"status": "gone"}, {"priority": "max"}):
        answer = agent.post(f"/tickets/{my_ticket}/update", data={"csrf": token, **bad})
        assert answer.status_code == 400, bad
    answer = agent.post(f"/tickets/{my_ticket}/notes", data={
        "csrf": token, "text": f"@{mine.outsider.email} look"})
    assert answer.status_code == 422  # not a member of the inbox: could not open it


def test_script_in_subjects_names_notes_and_canned_bodies_stays_text(
        browser: webdriver.Chrome, web_server: Server, desks: tuple[Desk, Desk]) -> None:
    """A customer named and writing with script in the subject and body (its HTML part
    the stored-XSS corpus), a note and a canned response holding script: the list, the
    ticket and the reply box show it as text, the HTML sits in its sandboxed frame, and
    nothing of it runs."""
    desk = desks[0]
    mail = message(sender=f'"{SCRIPT}" <{desk.customer}>', to=desk.address,
                   subject=f"Help {SCRIPT}", body=f"Body {SCRIPT}")
    mail.add_alternative("<p>Hello</p>" + "".join(XSS_HTML), subtype="html")
    logged_id(deliver(web_server, mail, desk.address, mail_from=desk.customer))
    sign_in(browser, web_server, desk.agents[0])
    browser.get(f"{web_server.base_url}/tickets")
    link = browser.find_element(By.PARTIAL_LINK_TEXT, "Help <script>")
    assert SCRIPT in link.text
    follow(browser, link)
    browser.find_element(By.ID, "note-text").send_keys(f"Note {SCRIPT}")
    follow(browser, browser.find_element(By.ID, "add-note"))
    Select(browser.find_element(By.ID, "canned")).select_by_visible_text("On it")
    follow(browser, browser.find_element(By.ID, "insert-canned"))
    box = browser.find_element(By.ID, "reply-text").get_attribute("value")
    assert box is not None and box.endswith(SCRIPT)
    page = browser.find_element(By.ID, "main").text
    for shown in (f"Help {SCRIPT}", f"Note {SCRIPT}"):
        assert shown in page, shown
    text_version = browser.find_element(By.CSS_SELECTOR, "details.text pre")
    assert f"Body {SCRIPT}" in str(text_version.get_attribute("textContent"))
    assert browser.execute_script("return window.__xss") is None
    assert not browser.find_elements(By.CSS_SELECTOR, "main img, main script")
    [frame] = browser.find_elements(By.CSS_SELECTOR, "main iframe")
    assert frame.get_attribute("sandbox") == ""
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (reading it is the check)
