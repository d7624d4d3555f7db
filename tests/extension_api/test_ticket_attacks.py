"""A team inbox attacked by the portal's other users, through the real ports on both
backends: a colleague who is not a member learns nothing of its mail (the ingest log,
a thread that mixes their mail with the inbox's, one-click logging of a copy, moving
their email into its threads, search pages and cursors), and bad settings are 422."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import make_msgid
from typing import Any

import pytest

from tests.support import postgres
from tests.support.mail import deliver, logged_id, message
from tests.support.server import Server
from tests.support.tickets import Desk, customer_mail, make_desk


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def desk_server(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The suite's shared SQLite server (tests isolate by portal), or one on PostgreSQL."""
    if request.param == "sqlite":
        yield request.getfixturevalue("server")
        return
    with postgres.database_for(request.param) as url:
        running = Server(tmp_path_factory.mktemp(f"attacks-{request.param}"),
                         db_url=url).start()
        yield running
        running.stop()


@pytest.fixture
def desk(desk_server: Server) -> Desk:
    return make_desk(desk_server)


def _senders(desk: Desk, token: str) -> set[str]:
    with desk.api(token) as api:
        response = api.get("/api/v1/ingest-log", params={"limit": 200})
    assert response.status_code == 200, response.text
    return {e["sender"] for e in response.json()["items"]}


def test_ingest_log_shows_a_team_inbox_refusals_to_its_members_only(desk: Desk) -> None:
    """Mail to the team inbox refused (past the sender's allowance, at either of its
    addresses; automatic mail) is in the ingest log of its members and the admin, not
    of a colleague outside it, who still sees the refusals of their own logging address."""
    with desk.api() as admin:
        assert admin.patch(f"/api/v1/team-inboxes/{desk.inbox['id']}",
                           json={"sender_hourly_limit": 1}).status_code == 200
    tagged = desk.account.bcc_address.replace("@", f"+inbox-{desk.inbox['id']}@")
    for rcpt in (tagged, desk.address, tagged):
        deliver(desk.server, customer_mail("flood@spam.example"), rcpt,
                mail_from="flood@spam.example")
    bounce = customer_mail("mailer-daemon@mx.example", "Undeliverable: hello")
    bounce["Auto-Submitted"] = "auto-replied"
    code, text = deliver(desk.server, bounce, desk.address)
    assert code == 250 and "not logged" in text
    stranger = message(sender="nobody@elsewhere.example", to="rep@ourco.example")
    deliver(desk.server, stranger, desk.account.bcc_address)
    inbox_senders = {"flood@spam.example", "mailer-daemon@mx.example"}
    for token in (desk.account.admin_token, desk.agents[0]["api_token"]):
        assert inbox_senders <= _senders(desk, token)
    seen = _senders(desk, desk.outsider["api_token"])
    assert "nobody@elsewhere.example" in seen
    assert not seen & inbox_senders
    with desk.api(desk.outsider["api_token"]) as api:  # nor page by page
        page = api.get("/api/v1/ingest-log", params={"limit": 1}).json()
        assert [e["sender"] for e in page["items"]] == ["nobody@elsewhere.example"]


def _thread_with_a_colleague(desk: Desk) -> tuple[dict[str, Any], int, int]:
    """A customer's ticket mail, and the outsider's own logged mail that answers it (so
    both are on one thread): (the customer's email, its id, the outsider's email id)."""
    first = customer_mail("carla@client.example", "Refund for invoice 4711")
    team_email = logged_id(desk.send(first))
    mine = message(sender="sales@ourco.example", to="carla@client.example",
                   subject="Our offer", message_id=make_msgid(),
                   in_reply_to=str(first["Message-ID"]))
    own = logged_id(deliver(desk.server, mine, desk.account.bcc_address))
    with desk.api() as admin:
        email = admin.get(f"/api/v1/emails/{team_email}").json()
    assert admin_thread(desk, email["thread_id"]) == {team_email, own}
    return email, team_email, own


def admin_thread(desk: Desk, thread_id: int) -> set[int]:
    with desk.api() as admin:
        return {e["id"] for e in admin.get(f"/api/v1/threads/{thread_id}").json()["emails"]}


def test_a_mixed_thread_shows_a_non_member_only_their_mail(desk: Desk) -> None:
    """A thread holding a team inbox's email and a colleague's own: the colleague sees
    their email, and neither the inbox's email nor its subject (the thread's subject
    is the first email they see); a member sees both and the real subject."""
    email, team_email, own = _thread_with_a_colleague(desk)
    with desk.api(desk.outsider["api_token"]) as api:
        thread = api.get(f"/api/v1/threads/{email['thread_id']}").json()
        assert [e["id"] for e in thread["emails"]] == [own]
        assert "4711" not in str(thread)
        assert api.get(f"/api/v1/emails/{team_email}").status_code == 404
        found = api.get("/api/v1/emails", params={"message_id": email["message_id"]})
        assert found.json()["items"] == []
    with desk.api(desk.agents[0]["api_token"]) as api:
        thread = api.get(f"/api/v1/threads/{email['thread_id']}").json()
        assert thread["subject"] == "Refund for invoice 4711"
        assert {e["id"] for e in thread["emails"]} == {team_email, own}


def test_one_click_logging_a_copy_reveals_nothing(desk: Desk) -> None:
    """A colleague who logs a copy of a team inbox's email (its Message-ID) through
    one-click logging gets a 404, not the inbox's email."""
    first = customer_mail("dora@client.example", "Password reset for account 99")
    logged_id(desk.send(first))
    copy = message(sender="dora@client.example", to="sales@ourco.example",
                   subject="anything", message_id=str(first["Message-ID"]))
    with desk.api(desk.outsider["api_token"]) as api:
        response = api.post("/api/v1/emails/log", content=copy.as_bytes(),
                            headers={"content-type": "message/rfc822"})
    assert response.status_code == 404, response.text
    assert "account 99" not in response.text and "Password" not in response.text


def test_moving_an_email_into_a_team_inbox_thread_is_404(desk: Desk) -> None:
    """A colleague cannot move their own email into a thread of only team inbox mail
    (whose subject the thread would then show them): 404 as for any unknown thread."""
    team_email = logged_id(desk.send(customer_mail("eve@client.example", "Secret plans")))
    with desk.api() as admin:
        thread_id = admin.get(f"/api/v1/emails/{team_email}").json()["thread_id"]
    mine = message(sender="sales@ourco.example", to="someone@client.example",
                   subject="Lunch", message_id=make_msgid())
    own = logged_id(deliver(desk.server, mine, desk.account.bcc_address))
    with desk.api(desk.outsider["api_token"]) as api:
        moved = api.post(f"/api/v1/emails/{own}/thread", json={"thread_id": thread_id})
        assert moved.status_code == 404, moved.text
        assert api.get(f"/api/v1/threads/{thread_id}").status_code == 404
    assert admin_thread(desk, thread_id) == {team_email}


def test_search_leaves_a_team_inbox_out_before_paging(desk: Desk) -> None:
    """A colleague's search counts only what they may see: with team inbox mail newer
    than their own, their first page of one hit is their own email, and the cursor
    ends where their matches do (a member's first page is the inbox's newest)."""
    mine = message(sender="sales@ourco.example", to="zed@client.example",
                   subject="Kumquat delivery", body="The kumquat crates ship Monday.",
                   message_id=make_msgid(), date="Mon, 02 Nov 2026 09:30:00 +0100")
    own = logged_id(deliver(desk.server, mine, desk.account.bcc_address))
    inbox_ids = []
    for n in range(3):
        mail = customer_mail(f"k{n}@client.example", f"Kumquat crate {n} broken")
        inbox_ids.append(logged_id(desk.send(mail)))
    for params in ({"q": "kumquat", "limit": 1}, {"q": "kumquat -xyzzy", "limit": 1},
                   {"q": "kumquat", "limit": 5}):
        with desk.api(desk.outsider["api_token"]) as api:
            page = api.get("/api/v1/search", params=params).json()
        assert [h["email"]["id"] for h in page["items"]] == [own], params
        assert page["cursor"] is None, params
    with desk.api(desk.agents[0]["api_token"]) as api:
        page = api.get("/api/v1/search", params={"q": "kumquat", "limit": 3}).json()
        assert {h["email"]["id"] for h in page["items"]} <= {own, *inbox_ids}
        assert len(page["items"]) == 3 and page["cursor"] is not None


def test_overlapping_business_hours_are_refused(desk: Desk) -> None:
    """Business hours are read by core.sla's parser: spans that overlap (which would
    count their hours twice), a day given twice by spelling, a bad clock, a non-list
    are 422 naming business_hours; good hours are stored as the parser read them."""
    url = f"/api/v1/team-inboxes/{desk.inbox['id']}"
    with desk.api() as admin:
        for bad in ({"mon": [["09:00", "17:00"], ["12:00", "13:00"]]},
                    {"mon": [["09:00", "25:00"]]}, {"mon": "09:00-17:00"},
                    {"mon": [["09:00"]]}, {"mon": [[9, 17]]},
                    {"holidays": "2026-12-25"}, {"holidays": ["2026-02-30"]},
                    {"mon": [["09:00", "10:00"]] * 11}):
            response = admin.patch(url, json={"business_hours": bad})
            assert response.status_code == 422, (bad, response.text)
            assert "business_hours" in response.json()["error"]["message"], response.text
        good = admin.patch(url, json={"business_hours": {
            "tue": [["13:00", "17:00"], ["08:30", "12:00"]], "holidays": ["2026-12-25"]}})
        assert good.status_code == 200, good.text
    assert good.json()["business_hours"] == {
        "tue": [["08:30", "12:00"], ["13:00", "17:00"]], "holidays": ["2026-12-25"]}
