"""Pages on PostgreSQL: a NUL in any form field or query parameter is a 400 naming the
field, never a 500 (PostgreSQL's text columns refuse NUL); a ticket's pipeline, stage or
tag with a C0 control is a 400 too. The forms are the ones the pages show (every form of
every page, every named field), so a new one is covered by itself. Also the tickets
list's ``team_inbox_id`` filter (the reports page's name; ``inbox`` still works)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote

import httpx
import pytest

from tests.pages.conftest import Browsers, csrf_of
from tests.pages.test_tickets import Desk
from tests.support.nul_sweep import NUL, desk_on_postgres
from tests.support.smtp_recorder import SmtpRecorder

# Every page a signed-in user opens that shows forms (the ticket's is added); live feeds
# and links that need a token of their own are left out.
PAGES = ("/tickets", "/setup", "/not-logged", "/inboxes", "/team", "/tokens",
         "/password", "/reports", "/contacts", "/search", "/tracking")


def _ticket_rows(page: str) -> set[int]:
    return {int(n) for n in re.findall(r'data-ticket="(\d+)"', page)}


@dataclass
class Form:
    page: str
    method: str
    action: str
    fields: list[str] = field(default_factory=list)


class _Forms(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.page, self.found, self.open = page, list[Form](), list[Form]()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        if tag == "form":
            self.open.append(Form(self.page, (given.get("method") or "get").lower(),
                                  given.get("action") or self.page.split("?")[0]))
        elif tag in ("input", "textarea", "select") and self.open and given.get("name"):
            name = given["name"] or ""
            if name != "csrf" and name not in self.open[-1].fields:
                self.open[-1].fields.append(name)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.open:
            self.found.append(self.open.pop())


def forms_of(client: httpx.Client, page: str) -> tuple[list[Form], str]:
    shown = client.get(page)
    assert shown.status_code == 200, (page, shown.text[:300])
    parser = _Forms(page)
    parser.feed(shown.text)
    return parser.found, shown.text


@pytest.fixture(scope="module")
def pg_web(tmp_path_factory: pytest.TempPathFactory,
           relay: SmtpRecorder) -> Iterator[tuple[Desk, int]]:
    with desk_on_postgres(tmp_path_factory.mktemp("pg-web-nul"), relay) as made:
        yield made


@pytest.fixture
def pg_browsers(pg_web: tuple[Desk, int]) -> Iterator[Browsers]:
    with Browsers(pg_web[0].server) as made:
        yield made


def test_a_nul_in_any_form_field_or_query_parameter_is_a_400_naming_it(
        pg_web: tuple[Desk, int], pg_browsers: Browsers) -> None:
    desk, ticket_id = pg_web
    admin, agent = pg_browsers.new(desk.admin), pg_browsers.new(desk.agents[0])
    tried, wrong = [], []
    for client, page in [(agent, f"/tickets/{ticket_id}"), (agent, "/tickets"),
                         *[(admin, p) for p in PAGES]]:
        forms, text = forms_of(client, page)
        token = csrf_of(text) if any(f.method == "post" for f in forms) else ""
        for form in forms:
            for name in form.fields:
                if form.method == "post":
                    answer = client.post(form.action, data={"csrf": token, name: NUL})
                else:
                    path = form.action.split("#")[0]
                    answer = client.get(f"{path}?{quote(name)}={quote(NUL)}")
                tried.append((form.method, form.action, name))
                if answer.status_code != 400 or f"{name}: the NUL character" not in answer.text:
                    wrong.append((form.method, form.action, name, answer.status_code))
    assert not wrong, wrong
    # the reviewer's: the ticket's controls, its note, the ingest log's filter
    for case in (("post", f"/tickets/{ticket_id}/update", "pipeline"),
                 ("post", f"/tickets/{ticket_id}/update", "stage"),
                 ("post", f"/tickets/{ticket_id}/update", "tags"),
                 ("post", f"/tickets/{ticket_id}/notes", "text"),
                 ("get", "/not-logged", "sender")):
        assert case in tried, case
    assert len(tried) > 30, tried
    after = desk.ticket(ticket_id)
    assert (after["pipeline"], after["tags"]) == ("support", [])
    answer = admin.get("/not-logged?sender=%00&address=x")
    assert answer.status_code == 400 and "sender: the NUL character" in answer.text


@pytest.mark.parametrize("control", ["\x01", "\x1b", "\x0b", "\x1f"])
def test_a_control_character_in_a_ticket_label_is_a_400_naming_it(
        pg_web: tuple[Desk, int], pg_browsers: Browsers, control: str) -> None:
    desk, ticket_id = pg_web
    agent = pg_browsers.new(desk.agents[0])
    token = csrf_of(agent.get(f"/tickets/{ticket_id}").text)
    for name in ("pipeline", "stage", "tags"):
        answer = agent.post(f"/tickets/{ticket_id}/update",
                            data={"csrf": token, name: f"x{control}y"})
        assert answer.status_code == 400, (name, answer.text)
        assert f"{name}: control characters" in answer.text
    note = agent.post(f"/tickets/{ticket_id}/notes",
                      data={"csrf": token, "text": f"free text keeps x{control}y"})
    assert note.status_code == 303, note.text


def test_the_tickets_list_takes_the_reports_name_for_its_inbox(
        pg_web: tuple[Desk, int], pg_browsers: Browsers) -> None:
    """``?team_inbox_id=`` filters as ``?inbox=`` does; another portal's inbox is a
    404 either way; two different values are a 400."""
    desk, ticket_id = pg_web
    agent = pg_browsers.new(desk.agents[0])
    for name in ("team_inbox_id", "inbox"):
        listed = agent.get(f"/tickets?{name}={desk.inbox_id}")
        assert listed.status_code == 200 and ticket_id in _ticket_rows(listed.text)
        assert agent.get(f"/tickets?{name}={desk.inbox_id + 1000}").status_code == 404
        assert agent.get(f"/tickets?{name}=x").status_code == 400
    both = agent.get(f"/tickets?team_inbox_id={desk.inbox_id}&inbox={desk.inbox_id + 1}")
    assert both.status_code == 400
    same = agent.get(f"/tickets?team_inbox_id={desk.inbox_id}&inbox={desk.inbox_id}")
    assert same.status_code == 200
