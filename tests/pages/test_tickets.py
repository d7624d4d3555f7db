"""The ticket pages in the real Chromium and through the port: a member works a ticket
a customer opened over SMTP (assign, reply through the relay, note, close), someone
outside the inbox or the portal gets 404s and no list entries, and a second agent's
session shows the collision warning (and a crossing reply is held until sent anyway)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from core.storage.db import Database, sqlite_url
from core.types import Role
from tests.pages.conftest import (
    PASSWORD,
    Browsers,
    WebAccount,
    csrf_of,
    enable_sign_in,
    mails_to,
    unique,
    web_account,
)
from tests.pages.test_browser import follow, sign_in
from tests.support import ticket_rows
from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server, run_coroutine
from tests.support.smtp_recorder import SmtpRecorder


def enable_login(server: Server, portal: PortalAccount, made: dict[str, Any],
                 role: Role = Role.USER) -> WebAccount:
    """Let a user the API made sign in to the pages with the test password."""
    enable_sign_in(server, made["id"], role)
    return WebAccount(replace(portal, user_id=made["id"], user_email=made["email"],
                              user_token=made["api_token"]), made["email"], PASSWORD)


@dataclass
class Desk:
    """A portal whose admin and two agents sign in, a colleague outside its team
    inbox, the inbox's address and canned response, and a customer's address."""

    server: Server
    admin: WebAccount
    agents: list[WebAccount]
    agent_ids: list[int]
    outsider: WebAccount
    inbox_id: int
    address: str
    canned_id: int
    customer: str

    def api(self) -> httpx.Client:
        return self.server.api(self.admin.portal.admin_token)

    def open_ticket(self, subject: str = "Printer on fire",
                    body: str = "Hello,\n\nour printer is on fire again.\n\nCarla",
                    html: str | None = None) -> tuple[int, EmailMessage]:
        """A customer writes to the inbox over SMTP; the ticket it opened."""
        mail = message(sender=f"Carla Customer <{self.customer}>", to=self.address,
                       subject=subject, message_id=make_msgid(domain="customer.example"),
                       body=body)
        if html is not None:
            mail.add_alternative(html, subtype="html")
        email_id = logged_id(deliver(self.server, mail, self.address,
                                     mail_from=self.customer))
        with self.api() as api:
            items = api.get("/api/v1/tickets", params={"team_inbox_id": self.inbox_id,
                                                       "limit": 200}).json()["items"]
            for item in items:
                detail = api.get(f"/api/v1/tickets/{item['id']}").json()
                if email_id in [e["id"] for e in detail["emails"]]:
                    return int(item["id"]), mail
        raise AssertionError("the mail opened no ticket")

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        with self.api() as api:
            answer = api.get(f"/api/v1/tickets/{ticket_id}")
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found


def make_desk(server: Server, canned_body: str = "Hi {{contact.first_name|there}}, "
              "we are on it. {{agent.name}}") -> Desk:
    admin = web_account(server, unique("lead"))
    with server.api(admin.portal.admin_token) as api:
        made = [api.post("/api/v1/users", json={"email": unique(f"agent{n}-"),
                                                 "name": f"Agent {name}"}).json()
                for n, name in ((1, "Ana"), (2, "Ben"))]
        outsider = api.post("/api/v1/users", json={"email": unique("sales")}).json()
        inbox = api.post("/api/v1/team-inboxes", json={
            "name": "Support", "address": unique("support"),
            "members": [{"user_id": a["id"]} for a in made]})
        assert inbox.status_code == 201, inbox.text
        canned = api.post(f"/api/v1/team-inboxes/{inbox.json()['id']}/canned-responses",
                          json={"name": "On it", "body": canned_body})
        assert canned.status_code == 201, canned.text
    agents = [enable_login(server, admin.portal, a) for a in made]
    return Desk(server, admin, agents, [a["id"] for a in made],
                enable_login(server, admin.portal, outsider),
                inbox.json()["id"], inbox.json()["forwarding_address"],
                canned.json()["id"], f"carla.{time.monotonic_ns()}@customer.example")


@pytest.fixture(scope="module")
def desk(web_server: Server) -> Desk:
    return make_desk(web_server)


def _wait_for(browser: webdriver.Chrome, css: str, timeout: float = 10) -> Any:
    return WebDriverWait(browser, timeout).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def test_a_member_works_a_ticket_in_chromium(browser: webdriver.Chrome, web_server: Server,
                                             relay: SmtpRecorder, desk: Desk) -> None:
    """Agent Ana finds the customer's ticket in her list, opens it (the email, the
    contact), gives it to Ben, replies with the canned response through the relay
    (threaded to the customer's mail), notes it for Ben, and closes it: each step in
    the ticket's log, as the API shows it too."""
    ticket_id, first = desk.open_ticket()
    sign_in(browser, web_server, desk.agents[0])
    browser.get(f"{web_server.base_url}/tickets")
    row = browser.find_element(By.CSS_SELECTOR, f"#tickets tr[data-ticket='{ticket_id}']")
    assert "Printer on fire" in row.text and desk.customer in row.text
    follow(browser, row.find_element(By.TAG_NAME, "a"))
    contact = browser.find_element(By.ID, "ticket-contact").text
    assert contact.startswith(f"Carla Customer {desk.customer}")
    assert browser.find_element(By.ID, "ticket-company").get_attribute("href")
    conversation = browser.find_element(By.ID, "conversation").text
    assert "our printer is on fire again." in conversation

    Select(browser.find_element(By.ID, "control-assignee")).select_by_value(
        f"user:{desk.agent_ids[1]}")
    follow(browser, browser.find_element(By.ID, "save-controls"))
    assert browser.find_element(By.ID, "ticket-assignee").text == "Agent Ben"
    assert "Assigned to Agent Ben" in browser.find_element(By.ID, "conversation").text

    Select(browser.find_element(By.ID, "canned")).select_by_visible_text("On it")
    follow(browser, browser.find_element(By.ID, "insert-canned"))
    box = browser.find_element(By.ID, "reply-text")
    assert box.get_attribute("value") == "Hi Carla, we are on it. Agent Ana"
    box.send_keys(" The fire brigade is coming.")
    before = len(mails_to(relay, desk.customer))  # the module's other tests write too
    follow(browser, browser.find_element(By.ID, "send-reply"))
    [sent] = mails_to(relay, desk.customer)[before:]
    assert sent["In-Reply-To"] == first["Message-ID"]
    assert f"[Ticket#{ticket_id}]" in str(sent["Subject"])
    assert "we are on it. Agent Ana The fire brigade is coming." in sent.get_content()
    assert "The fire brigade is coming." in browser.find_element(By.ID, "conversation").text

    note = browser.find_element(By.ID, "note-text")
    note.send_keys(f"@{desk.agents[1].email} please call them back")
    follow(browser, browser.find_element(By.ID, "add-note"))
    shown = browser.find_element(By.CSS_SELECTOR, ".entry-note").text
    assert "internal note" in shown.lower() and "never sent" in shown
    assert "call them back" in shown
    with desk.server.api(desk.agents[1].portal.user_token) as api:
        events = api.get("/api/v1/events").json()["items"]
    assert [e["detail"]["ticket_id"] for e in events if e["type"] == "ticket_mentioned"] \
        == [ticket_id]

    Select(browser.find_element(By.ID, "control-status")).select_by_value("closed")
    follow(browser, browser.find_element(By.ID, "save-controls"))
    assert browser.find_element(By.ID, "ticket-status").text == "closed"

    detail = desk.ticket(ticket_id)
    assert detail["status"] == "closed"
    assert detail["assignee_user_id"] == desk.agent_ids[1]
    kinds = [a["kind"] for a in detail["activity"]]
    assert {"agent_reply", "note"} <= set(kinds) and kinds[-1] == "status"
    assert len(mails_to(relay, desk.customer)) == before + 1  # the note went nowhere
    with desk.server.api(desk.admin.portal.admin_token) as api:
        notes = api.get(f"/api/v1/tickets/{ticket_id}/notes")
    assert notes.status_code == 403  # notes are an agent's: the note is in the log above
    browser.get(f"{web_server.base_url}/tickets?status=closed&assignee=")
    assert browser.find_elements(By.CSS_SELECTOR, f"#tickets tr[data-ticket='{ticket_id}']")
    browser.get(f"{web_server.base_url}/tickets?status=open")
    assert not browser.find_elements(By.CSS_SELECTOR,
                                     f"#tickets tr[data-ticket='{ticket_id}']")


def _ticket_rows(page: str) -> set[int]:
    return {int(n) for n in re.findall(r'data-ticket="(\d+)"', page)}


def test_only_members_and_the_admin_see_a_ticket(browsers: Browsers, web_server: Server,
                                                 desk: Desk) -> None:
    """The colleague outside the inbox and another portal's admin: no list entry, and a
    404 for the ticket's page and every form of it (even with a good form token); the
    portal's admin sees it without being a member, and the filters narrow the list."""
    ticket_id, _ = desk.open_ticket("Invoice missing")
    member = browsers.new(desk.agents[0])
    assert ticket_id in _ticket_rows(member.get("/tickets").text)
    assert ticket_id in _ticket_rows(browsers.new(desk.admin).get("/tickets").text)
    other = web_account(web_server, unique("otherlead"))
    for stranger in (browsers.new(desk.outsider), browsers.new(other)):
        listed = stranger.get("/tickets")
        assert listed.status_code == 200 and ticket_id not in _ticket_rows(listed.text)
        assert stranger.get(f"/tickets?inbox={desk.inbox_id}").status_code == 404
        assert stranger.get(f"/tickets/{ticket_id}").status_code == 404
        token = csrf_of(stranger.get("/setup").text)
        assert stranger.get(f"/tickets/{ticket_id}/live").status_code == 404
        for action, data in (("update", {"status": "closed"}), ("reply", {"text": "hi"}),
                             ("notes", {"text": "hi"}), ("presence", {"state": "viewing"}),
                             ("update", {"pipeline": "Taken", "tags": "taken"}),
                             ("merge", {"into": str(ticket_id)})):
            answer = stranger.post(f"/tickets/{ticket_id}/{action}",
                                   data={"csrf": token, **data})
            assert answer.status_code == 404, (action, answer.text)
        reports = stranger.get("/reports")
        assert reports.status_code == 200
        assert 'data-value="0" id="times-tickets"' in reports.text
        assert stranger.get(f"/reports?team_inbox_id={desk.inbox_id}").status_code == 404
    taken = desk.ticket(ticket_id)  # nothing the strangers sent took
    assert (taken["status"], taken["pipeline"], taken["tags"]) == ("open", "support", [])

    mine = member.get(f"/tickets?assignee=me&inbox={desk.inbox_id}")
    assigned = desk.ticket(ticket_id)["assignee_user_id"]
    assert (ticket_id in _ticket_rows(mine.text)) == (assigned == desk.agent_ids[0])
    assert ticket_id not in _ticket_rows(member.get("/tickets?priority=urgent").text)
    assert ticket_id not in _ticket_rows(member.get("/tickets?assignee=none").text)
    for bad in ("status=lost", "priority=max", "assignee=everyone", "inbox=x", "page=0"):
        assert member.get(f"/tickets?{bad}").status_code == 400, bad


def test_a_second_agent_sees_the_collision_warning(
        browser: webdriver.Chrome, browsers: Browsers, web_server: Server,
        relay: SmtpRecorder, desk: Desk) -> None:
    """Ben has the ticket open (his page registered him) when Ana opens it: her page
    warns that Ben is viewing, then, once Ben writes, that he is replying. Ben's reply
    goes out first; Ana's, written on the older view, is held with his reply named,
    until she sends it anyway."""
    ticket_id, _ = desk.open_ticket("Login broken")
    ben = browsers.new(desk.agents[1])
    ben_page = ben.get(f"/tickets/{ticket_id}")
    assert ben_page.status_code == 200 and 'id="collision" ' in ben_page.text
    sign_in(browser, web_server, desk.agents[0])
    browser.get(f"{web_server.base_url}/tickets/{ticket_id}")
    warning = _wait_for(browser, "#collision")
    assert "Agent Ben" in warning.text and "is viewing" in warning.text

    token = csrf_of(ben_page.text)
    said = ben.post(f"/tickets/{ticket_id}/presence", data={"csrf": token,
                                                           "state": "replying"})
    assert said.status_code == 200
    assert [o["state"] for o in said.json()["others"]] == ["viewing"]  # Ana, by her page
    browser.find_element(By.ID, "reply-text").click()  # her script reports and listens
    WebDriverWait(browser, 10).until(lambda b: "is replying" in b.find_element(
        By.ID, "others").text)
    assert ben.post(f"/tickets/{ticket_id}/presence", data={
        "csrf": token, "state": "replying"}).json()["others"][0]["state"] == "replying"

    seen = re.search(r'name="seen" value="(\d+)"', ben_page.text)
    assert seen is not None
    assert ben.post(f"/tickets/{ticket_id}/reply", data={
        "csrf": token, "seen": seen.group(1), "text": "Ben here: reset your password."
    }).status_code == 303
    browser.find_element(By.ID, "reply-text").send_keys("Ana here: try again.")
    browser.find_element(By.ID, "send-reply").click()
    held = _wait_for(browser, "#reply-collision")
    assert "Agent Ben" in held.text
    assert browser.find_element(By.ID, "reply-text").get_attribute("value") == \
        "Ana here: try again."
    assert "Ben here: reset your password." in browser.find_element(
        By.ID, "conversation").text
    follow(browser, browser.find_element(By.ID, "send-reply"))  # "Send anyway"
    texts = [m.get_content() for m in mails_to(relay, desk.customer)]
    assert [t.splitlines()[0] for t in texts[-2:]] == ["Ben here: reset your password.",
                                                      "Ana here: try again."]
    replies = [a for a in desk.ticket(ticket_id)["activity"] if a["kind"] == "agent_reply"]
    assert [r["detail"]["forced"] for r in replies] == [False, True]
    browser.get(f"{web_server.base_url}/setup")  # her page's pagehide says she left
    WebDriverWait(browser, 10).until(lambda b: not ben.post(
        f"/tickets/{ticket_id}/presence", data={"csrf": token, "state": "viewing"}
    ).json()["others"])


def test_the_list_pages_by_latest_activity(browsers: Browsers, web_server: Server) -> None:
    """Thirty tickets whose latest activity is an hour apart each, in an order other
    than their ids': page one has the 25 latest, latest first; *Next page* (keeping
    the filters) the other five; nothing twice, nothing lost."""
    desk = make_desk(web_server)
    now = datetime.now(UTC)
    latest = {n: now - timedelta(hours=(n * 7) % 30) for n in range(30)}

    async def write() -> list[int]:
        db = Database(web_server.db_url or sqlite_url(web_server.data_dir / "inboxlog.db"))
        try:
            async with db.transaction() as session:
                return [await ticket_rows.ticket(
                    session, desk.admin.portal.portal_id, desk.inbox_id,
                    latest[n] - timedelta(days=1), updated_at=latest[n]) for n in range(30)]
        finally:
            await db.dispose()

    ids = run_coroutine(write)
    expected = [ids[n] for n in sorted(range(30), key=lambda n: latest[n], reverse=True)]
    agent = browsers.new(desk.agents[0])
    first = agent.get(f"/tickets?status=open&inbox={desk.inbox_id}")
    on_first = [int(n) for n in re.findall(r'data-ticket="(\d+)"', first.text)]
    assert on_first == expected[:25]
    older = re.search(r'id="older" href="([^"]+)"', first.text)
    assert older is not None and "status=open" in older.group(1)
    second = agent.get(older.group(1).replace("&amp;", "&"))
    assert [int(n) for n in re.findall(r'data-ticket="(\d+)"', second.text)] == expected[25:]
    assert 'id="older"' not in second.text and 'id="newer"' in second.text


def test_saving_the_controls_keeps_an_assignee_who_left_the_inbox(
        browsers: Browsers, web_server: Server) -> None:
    """Ben has the ticket when an admin takes him out of the inbox: Ana's page still
    shows him chosen, so saving a new status keeps him; choosing nobody unassigns."""
    desk = make_desk(web_server)
    ticket_id, _ = desk.open_ticket()
    ana_id, ben_id = desk.agent_ids
    with desk.api() as api:
        assert api.post(f"/api/v1/tickets/{ticket_id}/assign",
                        json={"user_id": ben_id}).status_code == 200
        assert api.patch(f"/api/v1/team-inboxes/{desk.inbox_id}", json={
            "members": [{"user_id": ana_id}]}).status_code == 200
    ana = browsers.new(desk.agents[0])
    page = ana.get(f"/tickets/{ticket_id}").text
    assert f'<option value="user:{ben_id}" selected>Agent Ben (no longer a member)' in page
    token = csrf_of(page)
    assert ana.post(f"/tickets/{ticket_id}/update", data={
        "csrf": token, "status": "pending", "priority": "normal",
        "assignee": f"user:{ben_id}"}).status_code == 303
    kept = desk.ticket(ticket_id)
    assert (kept["status"], kept["assignee_user_id"]) == ("pending", ben_id)
    assert ana.post(f"/tickets/{ticket_id}/update", data={
        "csrf": token, "status": "pending", "priority": "high",
        "assignee": ""}).status_code == 303
    changed = desk.ticket(ticket_id)
    assert (changed["priority"], changed["assignee_user_id"]) == ("high", None)
