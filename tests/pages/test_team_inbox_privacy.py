"""A team inbox's mail kept from a colleague outside it on the pages, through the real
port (docs/tickets.md, "Who sees what"): why-not-logged, search, a thread that mixes
their mail with the inbox's, the list of threads to move an email to, moving into an
inbox thread, and the contact and company timelines. Members and the admin see it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.utils import make_msgid

import httpx
import pytest

from tests.pages.conftest import Browsers, csrf_of
from tests.pages.test_tickets import Desk, make_desk
from tests.support import postgres
from tests.support.mail import deliver, logged_id, message
from tests.support.server import Server
from tests.support.smtp_recorder import SmtpRecorder

SECRET = "Refund for invoice 4711"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         relay: SmtpRecorder) -> Iterator[Server]:
    """The pages' shared SQLite server, or one on PostgreSQL (the queries differ)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("web_server")
        return
    with postgres.database_for(request.param) as url:
        running = Server(tmp_path_factory.mktemp("privacy-pg"), db_url=url,
                         extra_args=relay.serve_args()).start()
        yield running
        running.stop()


@pytest.fixture
def browsers(site: Server) -> Iterator[Browsers]:
    with Browsers(site) as made:
        yield made


@pytest.fixture(scope="module")
def desk(site: Server) -> Desk:
    return make_desk(site)


def _email(desk: Desk, email_id: int) -> dict[str, object]:
    with desk.api() as api:
        answer = api.get(f"/api/v1/emails/{email_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, object] = answer.json()
    return found


def _own(desk: Desk, subject: str, *, to: str, in_reply_to: str | None = None,
         body: str = "Hello.", date: str | None = None) -> int:
    """The outsider's own mail, logged by BCC to the portal's address."""
    mail = message(sender=desk.outsider.email, to=to, subject=subject,
                   message_id=make_msgid(), body=body, in_reply_to=in_reply_to, date=date)
    return logged_id(deliver(desk.server, mail, desk.admin.portal.bcc_address,
                             mail_from=desk.outsider.email))


def test_the_not_logged_page_keeps_the_inbox_refusals_to_its_members(
        browsers: Browsers, site: Server) -> None:
    """Mail to the inbox past a sender's hourly allowance is refused: the entry is on
    the members' and the admin's why-not-logged page, not the colleague's (searched by
    its sender either), who still sees refusals of mail to the portal's own address."""
    desk = make_desk(site)  # its own: the allowance of one would hold up the rest
    with desk.api() as api:
        assert api.patch(f"/api/v1/team-inboxes/{desk.inbox_id}",
                         json={"sender_hourly_limit": 1}).status_code == 200
    flood = "flood@spam.example"
    for n in range(2):
        deliver(desk.server, message(sender=flood, to=desk.address, subject=f"Buy {n}",
                                     message_id=make_msgid()),
                desk.address, mail_from=flood)
    stranger = "nobody@elsewhere.example"
    deliver(desk.server, message(sender=stranger, to="rep@ourco.example"),
            desk.admin.portal.bcc_address, mail_from=stranger)
    for member in (desk.agents[0], desk.admin):
        seen = browsers.new(member).get("/not-logged").text
        assert flood in seen and stranger in seen
    outsider = browsers.new(desk.outsider)
    page = outsider.get("/not-logged")
    assert page.status_code == 200 and stranger in page.text
    assert flood not in page.text
    assert flood not in outsider.get("/not-logged", params={"sender": "flood"}).text


def test_search_leaves_the_inbox_out_before_paging(browsers: Browsers, desk: Desk) -> None:
    """More inbox mail matches than a page holds, all newer than the colleague's own
    match: their first page is their own email and has no next page (it was an empty
    page with a link to more); a member's first page is full, with a next one."""
    own = _own(desk, "Kumquat delivery", to="zed@client.example",
               body="The kumquat crates ship Monday.", date="Mon, 02 Nov 2026 09:30:00 +0100")
    for n in range(21):
        mail = message(sender=f"k{n}@client.example", to=desk.address,
                       subject=f"Kumquat crate {n} broken", message_id=make_msgid(),
                       body="A kumquat crate arrived broken.")
        logged_id(deliver(desk.server, mail, desk.address, mail_from=f"k{n}@client.example"))
    page = browsers.new(desk.outsider).get("/search", params={"q": "kumquat"})
    assert page.status_code == 200
    assert _hits(page.text) == {own} and "cursor=" not in page.text
    member = browsers.new(desk.agents[0]).get("/search", params={"q": "kumquat"}).text
    assert len(_hits(member)) == 20 and "cursor=" in member


def _hits(page: str) -> set[int]:
    return {int(n) for n in re.findall(r"#email-(\d+)", page)}


def _mixed_thread(desk: Desk) -> tuple[int, int, int]:
    """A customer's ticket mail and the colleague's own reply to it on one thread:
    (the thread, the inbox email, the colleague's email)."""
    _, first = desk.open_ticket(SECRET)
    inbox_email = _email(desk, int(_ticket_email(desk, str(first["Message-ID"]))))
    own = _own(desk, "Our offer", to=desk.customer, in_reply_to=str(first["Message-ID"]))
    thread_id = int(str(inbox_email["thread_id"]))
    assert _email(desk, own)["thread_id"] == thread_id
    return thread_id, int(str(inbox_email["id"])), own


def _ticket_email(desk: Desk, message_id: str) -> int:
    with desk.api() as api:
        items = api.get("/api/v1/emails", params={"message_id": message_id}).json()["items"]
    assert len(items) == 1, items
    return int(items[0]["id"])


def _title(page: httpx.Response) -> str:
    return page.text.split("<h1>", 1)[1].split("</h1>", 1)[0]


def test_a_mixed_thread_is_titled_by_the_colleagues_own_mail(
        browsers: Browsers, desk: Desk) -> None:
    """The colleague opens the thread: their email only, titled by it (the page was
    titled by the inbox email's subject); a member sees both and the real subject; the
    inbox email's own page is a 404 for the colleague."""
    thread_id, inbox_email, own = _mixed_thread(desk)
    outsider = browsers.new(desk.outsider)
    page = outsider.get(f"/threads/{thread_id}")
    assert page.status_code == 200
    assert _title(page) == "Our offer" and "4711" not in page.text
    assert f'id="email-{own}"' in page.text and f'id="email-{inbox_email}"' not in page.text
    assert outsider.get(f"/emails/{inbox_email}").status_code == 404
    member = browsers.new(desk.agents[0]).get(f"/threads/{thread_id}")
    assert _title(member) == SECRET and f'id="email-{own}"' in member.text


def test_moving_lists_and_enters_no_inbox_thread(browsers: Browsers, desk: Desk) -> None:
    """The colleague's own email to a customer who also wrote the inbox: its list of
    threads to move to leaves out the inbox's thread (it listed its subject) and names a
    mixed thread by their own email, the subject's words find neither, and posting the
    inbox thread's id anyway is a 404 that moves nothing (into the mixed thread: moved);
    the admin's list has both."""
    _, secret = desk.open_ticket("Secret plans")
    secret_thread = int(str(_email(desk, _ticket_email(desk, str(secret["Message-ID"])))[
        "thread_id"]))
    mixed_thread, _, _ = _mixed_thread(desk)
    own = _own(desk, "Lunch", to=desk.customer)
    own_thread = int(str(_email(desk, own)["thread_id"]))
    outsider = browsers.new(desk.outsider)
    page = outsider.get(f"/threads/{own_thread}")
    assert page.status_code == 200
    assert "Secret plans" not in page.text and "4711" not in page.text
    assert f'value="{secret_thread}"' not in page.text
    assert f'value="{mixed_thread}"' in page.text and "Our offer" in page.text
    for words in ("Secret", "4711"):
        found = outsider.get(f"/threads/{own_thread}", params={"move": own, "find": words})
        assert f'value="{secret_thread}"' not in found.text, words
        assert f'value="{mixed_thread}"' not in found.text, words
    moved = outsider.post(f"/emails/{own}/move", data={
        "csrf": csrf_of(page.text), "thread_id": str(secret_thread)})
    assert moved.status_code == 404, moved.text
    assert _email(desk, own)["thread_id"] == own_thread
    admin = browsers.new(desk.admin).get(f"/threads/{own_thread}").text
    assert f'value="{secret_thread}"' in admin and "Secret plans" in admin
    moved = outsider.post(f"/emails/{own}/move", data={
        "csrf": csrf_of(page.text), "thread_id": str(mixed_thread)})
    assert moved.status_code == 303, moved.text  # a thread they have mail on: moved
    assert _email(desk, own)["thread_id"] == mixed_thread


def test_the_contact_and_company_timelines_leave_the_inbox_out(
        browsers: Browsers, desk: Desk) -> None:
    """The customer's contact page and their company's: the colleague sees their own
    email to the customer and none of the inbox's (a member sees both)."""
    desk.open_ticket("Contract renewal 2027")
    _own(desk, "Coffee next week", to=desk.customer)
    outsider, member = browsers.new(desk.outsider), browsers.new(desk.agents[0])
    found = re.search(r'href="/contacts/(\d+)"',
                      outsider.get("/contacts", params={"q": desk.customer}).text)
    assert found, "the customer is not a contact"
    page = outsider.get(f"/contacts/{found.group(1)}").text
    assert "Coffee next week" in page and "Contract renewal" not in page
    assert "Contract renewal" in member.get(f"/contacts/{found.group(1)}").text
    company = re.search(r'href="(/companies/\d+)"', page)
    assert company, "the customer has no company"
    page = outsider.get(company.group(1)).text
    assert "Coffee next week" in page and "Contract renewal" not in page
    assert "Contract renewal" in member.get(company.group(1)).text
