"""GET /api/v1/search over real HTTP against `inboxlog serve`, on SQLite and PostgreSQL:
mail logged through the SMTP port is found (ranked, filtered, highlighted, paged) by its
portal only; deleting, restoring, erasing and purging change what is found at once; a
message that was not logged is not found."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from core.storage.db import Database, sqlite_url
from tests.support import postgres
from tests.support.mail import logged_id
from tests.support.server import PortalAccount, Server, run_coroutine


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def search_server(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own on each backend (its purges move time far ahead)."""
    with postgres.database_for(request.param) as url:
        running = Server(tmp_path_factory.mktemp(f"search-{request.param}"),
                         db_url=url).start()
        yield running
        running.stop()


@pytest.fixture
def portal(search_server: Server) -> PortalAccount:
    return search_server.new_portal()


def _message(account: PortalAccount, *, subject: str, body: str = "Hello.",
             to: str = "Dana Buyer <dana@acme.example>", sender: str | None = None,
             date: datetime | None = None, files: tuple[str, ...] = (),
             content_language: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender or f"Rita Rep <{account.user_email}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@ourco.example>"
    msg.set_content(body)
    if content_language is not None:  # after set_content, which clears Content-* headers
        msg["Content-Language"] = content_language
    for name in files:
        msg.add_attachment(b"%PDF-1.4 offer", maintype="application", subtype="pdf",
                           filename=name)
    return msg


def _send(server: Server, account: PortalAccount, msg: EmailMessage,
          mail_from: str | None = None) -> tuple[int, str]:
    with server.smtp() as smtp:
        smtp.ehlo("client.example")
        assert smtp.mail(mail_from or account.user_email)[0] == 250
        assert smtp.rcpt(account.bcc_address)[0] == 250
        code, reply = smtp.data(msg.as_bytes(policy=policy.SMTP))
    return code, reply.decode()


def _log(server: Server, account: PortalAccount, **fields: Any) -> int:
    return logged_id(_send(server, account, _message(account, **fields)))


def _search(server: Server, token: str, q: str, **params: Any) -> dict[str, Any]:
    with server.api(token) as api:
        response = api.get("/api/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _ids(server: Server, token: str, q: str, **params: Any) -> list[int]:
    return [hit["email"]["id"] for hit in _search(server, token, q, **params)["items"]]


def _documents(server: Server, email_id: int) -> int:
    """Rows the index holds for an email, read from the server's database."""

    async def count() -> int:
        db = Database(server.db_url or sqlite_url(server.data_dir / "inboxlog.db"))
        try:
            async with db.read() as session:
                return int((await session.execute(text(
                    "SELECT count(*) FROM search_documents WHERE email_id = :id"),
                    {"id": email_id})).scalar_one())
        finally:
            await db.dispose()

    return run_coroutine(count)


def test_ranking_snippets_and_the_email(search_server: Server, portal: PortalAccount) -> None:
    """The subject match ranks first; each hit is an email summary with its snippet."""
    token = portal.user_token
    in_body = _log(search_server, portal, subject="Hello",
                   body="Thanks for the call.\n\nAs discussed we agreed to the discount "
                        "of ten percent for the first year.\n\nRita")
    in_subject = _log(search_server, portal, subject="Discount for Acme", body="See below.")
    page = _search(search_server, token, "discount")
    assert [h["email"]["id"] for h in page["items"]] == [in_subject, in_body]
    assert page["cursor"] is None
    hit = page["items"][1]
    assert hit["email"]["subject"] == "Hello"
    assert hit["email"]["from"] == {"email": portal.user_email, "name": "Rita Rep"}
    assert hit["snippet"]["field"] == "text"
    shown = hit["snippet"]["text"]
    assert [shown[s:e] for s, e in hit["snippet"]["highlights"]] == ["discount"]
    first = page["items"][0]
    assert [first["email"]["subject"][s:e] for s, e in first["subject_highlights"]] == [
        "Discount"]


def test_operators(search_server: Server, portal: PortalAccount) -> None:
    """Phrases, -word, from:, to:, subject:, has:attachment, before: and after: each
    narrow the search as docs/search.md says."""
    token = portal.user_token
    old = _log(search_server, portal, subject="Pricing question", body="We agreed on terms.",
               date=datetime(2026, 3, 2, 10, tzinfo=UTC))
    offer = _log(search_server, portal, subject="Pricing offer",
                 body="The terms we agreed: see the file.", to="Olga Ortiz <olga@ortiz.example>",
                 files=("Angebot_Q3.pdf",))
    assert sorted(_ids(search_server, token, "pricing")) == sorted([old, offer])
    assert _ids(search_server, token, '"agreed on terms"') == [old]
    assert _ids(search_server, token, "pricing -offer") == [old]
    assert _ids(search_server, token, 'pricing -"see the file"') == [old]
    assert _ids(search_server, token, "pricing to:olga") == [offer]
    assert _ids(search_server, token, "to:olga@ortiz.example") == [offer]
    assert sorted(_ids(search_server, token, f"from:{portal.user_email}")) == sorted(
        [old, offer])
    assert _ids(search_server, token, "from:olga") == []
    assert _ids(search_server, token, "subject:offer") == [offer]
    assert _ids(search_server, token, "subject:terms") == []
    assert _ids(search_server, token, "pricing has:attachment") == [offer]
    assert _ids(search_server, token, "pricing -has:attachment") == [old]
    assert _ids(search_server, token, "angebot") == [offer]
    assert _ids(search_server, token, "pricing before:2026-03-03") == [old]
    assert _ids(search_server, token, "pricing after:2026-03-03") == [offer]


def test_filters(search_server: Server, portal: PortalAccount) -> None:
    """contact_id, company_id, direction, source, after, before and has_attachment."""
    token = portal.user_token
    to_dana = _log(search_server, portal, subject="Quarterly review", files=("q.pdf",),
                   date=datetime(2026, 5, 1, tzinfo=UTC))
    to_eve = _log(search_server, portal, subject="Quarterly review",
                  to="Eve <eve@other.example>")
    with search_server.api(token) as api:
        dana = api.get("/api/v1/contacts", params={"email": "dana@acme.example"}).json()
    contact = dana["items"][0]
    both = sorted([to_dana, to_eve])
    assert sorted(_ids(search_server, token, "quarterly")) == both
    assert _ids(search_server, token, "quarterly", contact_id=contact["id"]) == [to_dana]
    assert _ids(search_server, token, "quarterly", company_id=contact["company_id"]) == [
        to_dana]
    assert sorted(_ids(search_server, token, "quarterly", direction="outgoing")) == both
    assert _ids(search_server, token, "quarterly", direction="incoming") == []
    assert sorted(_ids(search_server, token, "quarterly", source="bcc")) == both
    assert _ids(search_server, token, "quarterly", source="sync") == []
    assert _ids(search_server, token, "quarterly", before="2026-05-02") == [to_dana]
    assert _ids(search_server, token, "quarterly", after="2026-05-01T12:00:00Z") == [to_eve]
    assert _ids(search_server, token, "quarterly", has_attachment="true") == [to_dana]
    assert _ids(search_server, token, "quarterly", has_attachment="false") == [to_eve]


def test_languages(search_server: Server, portal: PortalAccount) -> None:
    """Accents are ignored, a German word finds the compound it begins, CJK text is found
    by any part of it."""
    token = portal.user_token
    german = _log(search_server, portal, subject="Rabattvereinbarung für Frau Müller",
                  body="Anbei der Vertragsentwurf mit den Änderungen.")
    japanese = _log(search_server, portal, subject="会議の議事録",
                    body="明日の会議について、見積書を送ります。")
    chinese = _log(search_server, portal, subject="报价单", body="请查收附件中的报价单。")
    assert _ids(search_server, token, "muller") == [german]
    assert _ids(search_server, token, "anderungen") == [german]
    assert _ids(search_server, token, "rabatt vertrag") == [german]
    assert _ids(search_server, token, "議事録") == [japanese]
    assert _ids(search_server, token, "会議") == [japanese]
    assert _ids(search_server, token, "見積書") == [japanese]
    assert _ids(search_server, token, "报价") == [chinese]
    hit = _search(search_server, token, "見積書")["items"][0]
    shown = hit["snippet"]["text"]
    assert [shown[s:e] for s, e in hit["snippet"]["highlights"]] == ["見積書"]


def _language(server: Server, email_id: int) -> str | None:
    """The language the server recorded for an email, read from its database."""

    async def read() -> str | None:
        db = Database(server.db_url or sqlite_url(server.data_dir / "inboxlog.db"))
        try:
            async with db.read() as session:
                found: str | None = (await session.execute(text(
                    "SELECT language FROM emails WHERE id = :id"), {"id": email_id})
                ).scalar_one()
                return found
        finally:
            await db.dispose()

    return run_coroutine(read)


def test_stemming_by_the_emails_language(search_server: Server,
                                         portal: PortalAccount) -> None:
    """An email's language is its Content-Language, else the one detected in its reply
    text when that is long enough, else unknown; on PostgreSQL a word finds its other
    forms in an email of a known language (SQLite: words and prefixes only)."""
    token = portal.user_token
    declared = _log(search_server, portal, subject="Hallo", body="Die Rechnung.",
                    content_language="de-DE")
    detected = _log(search_server, portal, subject="Quarterly",
                    body="Hello Dana,\n\nplease find attached the invoice for the third "
                         "quarter; payment is due within thirty days, as agreed in our "
                         "framework contract.\n\nBest regards,\nRita")
    short = _log(search_server, portal, subject="Fyi", body="invoice attached")
    assert [_language(search_server, e) for e in (declared, detected, short)] == [
        "de", "en", None]
    stemmed = bool(search_server.db_url)  # the PostgreSQL server
    assert _ids(search_server, token, "Rechnungen") == ([declared] if stemmed else [])
    assert _ids(search_server, token, "invoices") == ([detected] if stemmed else [])
    assert sorted(_ids(search_server, token, "invoice")) == sorted([detected, short])
    hit = _search(search_server, token, "rechnung")["items"][0]
    assert hit["email"]["id"] == declared
    # Another portal finds none of it, stemmed or not.
    other = search_server.new_portal("ola@elsewhere.example")
    assert _ids(search_server, other.user_token, "invoices") == []
    assert _ids(search_server, other.user_token, "rechnung") == []


def test_pages(search_server: Server, portal: PortalAccount) -> None:
    """The cursor walks every hit once; a made-up cursor is 422."""
    token = portal.user_token
    logged = {_log(search_server, portal, subject=f"Weekly status {i}") for i in range(5)}
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    for _ in range(5):
        page = _search(search_server, token, "weekly", **params)
        seen += [h["email"]["id"] for h in page["items"]]
        if page["cursor"] is None:
            break
        params["cursor"] = page["cursor"]
    assert sorted(seen) == sorted(logged)
    with search_server.api(token) as api:
        bad = api.get("/api/v1/search", params={"q": "weekly", "cursor": "bogus"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize(("params", "status"), [
    ({}, 400), ({"q": "  "}, 400), ({"q": "x", "limit": "0"}, 400),
    ({"q": "x", "direction": "sideways"}, 400), ({"q": "x", "source": "fax"}, 400),
    ({"q": "x", "after": "last week"}, 400), ({"q": "x", "has_attachment": "maybe"}, 400),
    ({"q": "x", "contact_id": "abc"}, 400), ({"q": "before:someday"}, 422),
    ({"q": "has:pdf"}, 422), ({"q": "x" * 501}, 422)])
def test_bad_requests(search_server: Server, portal: PortalAccount,
                      params: dict[str, str], status: int) -> None:
    """What cannot be searched is a 4xx with a JSON error saying why."""
    with search_server.api(portal.user_token) as api:
        response = api.get("/api/v1/search", params=params)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_needs_a_token(search_server: Server) -> None:
    """Without a token: 401."""
    with search_server.api(None) as api:
        assert api.get("/api/v1/search", params={"q": "x"}).status_code == 401


def test_portals_and_roles(search_server: Server, portal: PortalAccount) -> None:
    """A user finds their colleagues' mail of the portal, as the read endpoints show it;
    the admin too; nobody finds another portal's."""
    colleague = search_server.new_portal("cole@ourco.example")  # another portal
    mine = _log(search_server, portal, subject="Merger plans Zanzibar")
    theirs = _log(search_server, colleague, subject="Merger plans Zanzibar")
    with search_server.api(portal.admin_token) as api:
        added = api.post("/api/v1/users", json={"email": "mo@ourco.example", "name": "Mo"})
        assert added.status_code in (200, 201), added.text
    assert _ids(search_server, added.json()["api_token"], "zanzibar") == [mine]
    assert _ids(search_server, portal.user_token, "zanzibar") == [mine]
    assert _ids(search_server, portal.admin_token, "zanzibar") == [mine]
    assert _ids(search_server, colleague.user_token, "zanzibar") == [theirs]
    assert _ids(search_server, portal.user_token, "-nothing") == [mine]


def test_delete_and_restore(search_server: Server, portal: PortalAccount) -> None:
    """A deleted email drops out of search at once and comes back on restore."""
    email_id = _log(search_server, portal, subject="Contract Xylophone")
    with search_server.api(portal.user_token) as api:
        assert api.delete(f"/api/v1/emails/{email_id}").status_code == 200
        assert _ids(search_server, portal.user_token, "xylophone") == []
        assert api.post(f"/api/v1/emails/{email_id}/restore").status_code == 200
    assert _ids(search_server, portal.user_token, "xylophone") == [email_id]


def test_erased_contact_leaves_the_index(search_server: Server,
                                         portal: PortalAccount) -> None:
    """Erasing a contact removes their emails from search and their rows from the index."""
    email_id = _log(search_server, portal, subject="Private Quokka matter",
                    to="Jane Doe <jane@quokka.example>", files=("quokka.pdf",))
    with search_server.api(portal.admin_token) as api:
        jane = api.get("/api/v1/contacts", params={"email": "jane@quokka.example"}).json()
        erased = api.delete(f"/api/v1/contacts/{jane['items'][0]['id']}",
                            params={"erase": "true"})
        assert erased.status_code == 200 and erased.json()["erased"]["emails"] == 1
    assert _ids(search_server, portal.admin_token, "quokka") == []
    assert _documents(search_server, email_id) == 0


def test_purged_email_leaves_the_index(search_server: Server,
                                       portal: PortalAccount) -> None:
    """`inboxlog purge` removes a deleted email past 90 days, and its index row with it."""
    email_id = _log(search_server, portal, subject="Obsolete Wombat offer")
    with search_server.api(portal.user_token) as api:
        assert api.delete(f"/api/v1/emails/{email_id}").status_code == 200
    assert _documents(search_server, email_id) == 1  # restorable: still indexed
    later = (datetime.now(UTC) + timedelta(days=91)).isoformat()
    assert search_server.cli("purge", "--now", later)["deleted_emails"] >= 1
    assert _documents(search_server, email_id) == 0
    with search_server.api(portal.user_token) as api:
        assert api.post(f"/api/v1/emails/{email_id}/restore").status_code == 404
    assert _ids(search_server, portal.user_token, "wombat") == []


def test_mail_not_logged_is_not_indexed(search_server: Server,
                                        portal: PortalAccount) -> None:
    """A refused message (a sender who is no user) and a not-logged one (a forwarding
    rule's mail outside any logged thread) leave nothing to find."""
    stranger = _message(portal, subject="Refused Narwhal", sender="x@stranger.example")
    code, _ = _send(search_server, portal, stranger, mail_from="x@stranger.example")
    assert code == 550
    rule = _message(portal, subject="Unthreaded Narwhal", sender="Kim <kim@lead.example>",
                    to=portal.user_email)
    code, reply = _send(search_server, portal, rule)  # envelope: the user's rule
    assert code == 250 and "not logged" in reply, reply
    assert _ids(search_server, portal.admin_token, "narwhal") == []
    assert _ids(search_server, portal.admin_token, "-nothing") == []


def test_described_by_openapi(search_server: Server) -> None:
    """/openapi.json documents the search and its answer."""
    with httpx.Client(base_url=search_server.base_url) as client:
        document = client.get("/openapi.json").json()
    operation = document["paths"]["/api/v1/search"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {
        "q", "contact_id", "company_id", "direction", "source", "after", "before",
        "has_attachment", "limit", "cursor"}
    assert "SearchPage" in document["components"]["schemas"]

