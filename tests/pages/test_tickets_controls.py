"""The ticket page's second round of controls in the real Chromium and through the port:
pipeline, stage and tags, merging a ticket into another, and the conversation updating
itself when the customer writes or another agent replies (the page's own live stream);
every new form and the stream are 404s for a colleague outside the inbox and another
portal, 403s without the form token; and whose inboxes "the admin" sees, on the pages
and over the API alike."""

from __future__ import annotations

import contextlib
import json
import time
from email.utils import make_msgid
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.pages.conftest import Browsers, csrf_of, unique, web_account
from tests.pages.test_browser import follow, sign_in
from tests.pages.test_tickets import Desk, make_desk
from tests.support.mail import deliver, logged_id, message
from tests.support.server import Server


@pytest.fixture(scope="module")
def desk(web_server: Server) -> Desk:
    return make_desk(web_server)


def _customer_reply(desk: Desk, ticket_id: int, text: str) -> int:
    """The customer answers the ticket's first email over SMTP, as a client would."""
    first = desk.ticket(ticket_id)["emails"][0]
    mail = message(sender=f"Carla Customer <{desk.customer}>", to=desk.address,
                   subject=f"Re: {first['subject']}",
                   message_id=make_msgid(domain="customer.example"), body=text,
                   in_reply_to=f"<{first['message_id'].strip('<>')}>")
    mail["References"] = mail["In-Reply-To"]
    return logged_id(deliver(desk.server, mail, desk.address, mail_from=desk.customer))


def test_pipeline_stage_tags_and_merge_in_chromium(browser: webdriver.Chrome,
                                                   web_server: Server, desk: Desk) -> None:
    """Ana puts a ticket in a pipeline and stage and tags it (the summary and the API
    say so, the log has the changes in words; an empty stage leaves it as it was), then
    merges the customer's second ticket into it from the second's page: she lands on
    the first, which holds both emails; the second is closed, merged into it."""
    kept, _ = desk.open_ticket("Toner everywhere", body="Toner all over the floor.")
    merged, _ = desk.open_ticket("Also the scanner", body="And the scanner jams.")
    sign_in(browser, web_server, desk.agents[0])
    browser.get(f"{web_server.base_url}/tickets/{kept}")
    for control, value in (("control-pipeline", "Hardware"),
                           ("control-stage", "Waiting on parts")):
        field = browser.find_element(By.ID, control)
        field.clear()  # a new ticket's: support / new
        field.send_keys(value)
    browser.find_element(By.ID, "control-tags").send_keys("printer, toner, printer")
    follow(browser, browser.find_element(By.ID, "save-controls"))
    assert browser.find_element(By.ID, "ticket-stage").text == "Hardware / Waiting on parts"
    assert browser.find_element(By.ID, "ticket-tags").text == "printer, toner"
    conversation = browser.find_element(By.ID, "conversation").text
    assert "Pipeline support → Hardware by Agent Ana" in conversation
    assert "Stage new → Waiting on parts by Agent Ana" in conversation
    detail = desk.ticket(kept)
    assert (detail["pipeline"], detail["stage"], detail["tags"]) == (
        "Hardware", "Waiting on parts", ["printer", "toner"])

    browser.find_element(By.ID, "control-stage").clear()
    tags = browser.find_element(By.ID, "control-tags")
    tags.clear()
    tags.send_keys("toner")
    follow(browser, browser.find_element(By.ID, "save-controls"))
    detail = desk.ticket(kept)
    assert (detail["stage"], detail["tags"]) == ("Waiting on parts", ["toner"])

    browser.get(f"{web_server.base_url}/tickets/{merged}")
    browser.find_element(By.ID, "merge-into").send_keys(f"#{kept}")
    follow(browser, browser.find_element(By.ID, "merge"))
    assert browser.current_url.endswith(f"/tickets/{kept}")
    conversation = browser.find_element(By.ID, "conversation").text
    assert "Toner all over the floor." in conversation
    assert "And the scanner jams." in conversation
    assert f"Ticket {merged} was merged into this one by Agent Ana" in conversation
    gone = desk.ticket(merged)
    assert (gone["status"], gone["merged_into_id"]) == ("closed", kept)
    browser.get(f"{web_server.base_url}/tickets/{merged}")
    assert not browser.find_elements(By.ID, "merge-form")  # merged once, not again


def test_bad_merges_and_labels_are_refused(browsers: Browsers, web_server: Server) -> None:
    """Merging into itself, into a ticket that does not exist, into another inbox's or
    portal's, or with no number is refused with a page saying why (4xx, never a 500),
    and nothing moves; an over-long stage or too many tags are 400s."""
    desk, other_inbox = make_desk(web_server), make_desk(web_server)
    ticket_id, _ = desk.open_ticket()
    stranger_ticket, _ = other_inbox.open_ticket()
    ana = browsers.new(desk.agents[0])
    token = csrf_of(ana.get(f"/tickets/{ticket_id}").text)
    for into, status in ((str(ticket_id), 422), ("999999999", 422),
                         (str(stranger_ticket), 422), ("", 400), ("x", 400),
                         ("9" * 30, 400)):
        answer = ana.post(f"/tickets/{ticket_id}/merge", data={"csrf": token, "into": into})
        assert answer.status_code == status, (into, answer.text)
        assert "Not merged" in answer.text or "Not done" in answer.text \
            or "Not a filter" in answer.text
    assert desk.ticket(ticket_id)["merged_into_id"] is None
    assert other_inbox.ticket(stranger_ticket)["merged_into_id"] is None
    for data in ({"stage": "s" * 51}, {"tags": ",".join(f"t{n}" for n in range(51))},
                 {"tags": "x" * 51}):
        assert ana.post(f"/tickets/{ticket_id}/update",
                        data={"csrf": token, **data}).status_code == 400, data
    assert desk.ticket(ticket_id)["tags"] == []


def test_the_conversation_updates_itself(browser: webdriver.Chrome, web_server: Server,
                                         desk: Desk) -> None:
    """Ana has a ticket open that is Ben's (its events are in his feed, not hers): the
    customer's reply over SMTP, then Ben's reply from the API, appear in her
    conversation without a reload, her reply box keeping what she typed."""
    ticket_id, _ = desk.open_ticket("Paper jam", body="The paper jams.")
    ben_id = desk.agent_ids[1]
    with desk.api() as api:
        assert api.post(f"/api/v1/tickets/{ticket_id}/assign",
                        json={"user_id": ben_id}).status_code == 200
    sign_in(browser, web_server, desk.agents[0])
    browser.get(f"{web_server.base_url}/tickets/{ticket_id}")
    browser.execute_script("window.__same_page = true;")
    browser.find_element(By.ID, "reply-text").send_keys("Half-written answer")

    def shows(text: str) -> bool:
        return text in browser.find_element(By.ID, "conversation").text

    _customer_reply(desk, ticket_id, "It jams on every page now.")
    WebDriverWait(browser, 15).until(lambda b: shows("It jams on every page now."))
    with desk.server.api(desk.agents[1].portal.user_token) as ben:
        sent = ben.post(f"/api/v1/tickets/{ticket_id}/replies",
                        json={"text": "Ben here: open tray 2."})
        assert sent.status_code in (200, 201), sent.text
    WebDriverWait(browser, 15).until(lambda b: shows("Ben here: open tray 2."))
    assert browser.execute_script("return window.__same_page === true;")
    assert browser.find_element(By.ID, "reply-text").get_attribute("value") == \
        "Half-written answer"
    assert browser.find_element(By.ID, "live-status").text == "Updated just now."


def _first_ticket_event(client: httpx.Client, path: str, timeout: float = 15) -> dict[str, Any]:
    """The first ``ticket_*`` event the stream at ``path`` sends."""
    deadline = time.monotonic() + timeout
    with client.stream("GET", path, timeout=timeout) as stream:
        assert stream.status_code == 200
        event = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event.startswith("ticket_"):
                found: dict[str, Any] = json.loads(line[6:])
                return found
            assert time.monotonic() < deadline, "no ticket event"
    raise AssertionError("the stream ended")


def test_the_stream_is_the_tickets_own(browsers: Browsers, web_server: Server,
                                       desk: Desk) -> None:
    """A member's stream of ticket A leaves out another ticket's events (B's, written
    first) and sends A's; for the colleague outside the inbox and another portal it is
    a 404. (The new forms' 404s and 403s: test_tickets.py's strangers and
    test_tickets_attacks.py's forms.)"""
    ticket_a, _ = desk.open_ticket("Stream A")
    ana = browsers.new(desk.agents[0])
    page = ana.get(f"/tickets/{ticket_a}").text
    after = page.split(f'data-live="/tickets/{ticket_a}/live?after=')[1].split('"')[0]
    desk.open_ticket("Stream B")  # its ticket_created is in the range, and left out
    _customer_reply(desk, ticket_a, "More about A.")
    event = _first_ticket_event(ana, f"/tickets/{ticket_a}/live?after={after}")
    assert event["detail"]["ticket_id"] == ticket_a and event["type"] == "ticket_replied"

    other = web_account(web_server, unique("otherlead"))
    for stranger in (browsers.new(desk.outsider), browsers.new(other)):
        assert stranger.get(f"/tickets/{ticket_a}/live").status_code == 404


def test_ticket_streams_have_a_budget_of_their_own(browsers: Browsers, desk: Desk) -> None:
    """A ticket page holds two streams (/live and its ticket's): five ticket streams
    of one user are the most (a sixth is a 429 page), and leave /live its own five."""
    ticket_id, _ = desk.open_ticket("Five tabs")
    ben = browsers.new(desk.agents[1])
    with contextlib.ExitStack() as open_streams:
        for _ in range(5):
            stream = open_streams.enter_context(
                ben.stream("GET", f"/tickets/{ticket_id}/live", timeout=10))
            assert stream.status_code == 200
        sixth = ben.get(f"/tickets/{ticket_id}/live")
        assert sixth.status_code == 429 and "Too many pages open" in sixth.text
        live = open_streams.enter_context(ben.stream("GET", "/live", timeout=10))
        assert live.status_code == 200
    deadline = time.monotonic() + 10  # the server sees each close as it happens
    while True:
        with ben.stream("GET", f"/tickets/{ticket_id}/live", timeout=10) as again:
            if again.status_code == 200 or time.monotonic() > deadline:
                break
    assert again.status_code == 200  # closing gave the slots back


def test_the_admin_sees_every_inbox_a_user_token_its_own(browsers: Browsers,
                                                        desk: Desk) -> None:
    """One rule on both sides (docs/tickets.md, "Who sees what"): the portal's admin (the
    admin token; an admin signed in to the pages) sees every team inbox's tickets; a
    user token is a user's, an admin's own too: only the inboxes they are a member of."""
    ticket_id, _ = desk.open_ticket("Admin rule")
    admin_page = browsers.new(desk.admin)
    listed = admin_page.get(f"/tickets?inbox={desk.inbox_id}")
    assert listed.status_code == 200 and f'data-ticket="{ticket_id}"' in listed.text
    assert admin_page.get(f"/tickets/{ticket_id}").status_code == 200
    with desk.server.api(desk.admin.portal.admin_token) as api:
        assert ticket_id in [t["id"] for t in api.get("/api/v1/tickets", params={
            "team_inbox_id": desk.inbox_id, "limit": 200}).json()["items"]]
        assert api.get(f"/api/v1/tickets/{ticket_id}").status_code == 200
    with desk.server.api(desk.admin.portal.user_token) as own:  # the same person's token
        assert ticket_id not in [t["id"] for t in own.get("/api/v1/tickets", params={
            "limit": 200}).json()["items"]]
        assert own.get(f"/api/v1/tickets/{ticket_id}").status_code == 404
