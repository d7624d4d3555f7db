"""The read side of the extension API, over real HTTP against `inboxlog serve`."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from tests.support.server import PortalAccount, Server

Attachment = tuple[str, str, bytes]  # filename, content type, bytes


def make_message(
    account: PortalAccount,
    *,
    to: str = "Dana Buyer <dana@acme.example>",
    subject: str = "Proposal",
    text: str = "Hello Dana,\nhere is the proposal.\n",
    html: str | None = None,
    date: datetime | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    attachments: tuple[Attachment, ...] = (),
    sender: str | None = None,
) -> EmailMessage:
    """A BCC'd outgoing email from the account's user (unless ``sender`` is given)."""
    msg = EmailMessage()
    msg["From"] = sender or f"Rita Rep <{account.user_email}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@ourco.example>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def send(server: Server, account: PortalAccount, msg: EmailMessage) -> tuple[int, str]:
    """Send ``msg`` to the account's logging address; the DATA reply."""
    with server.smtp() as smtp:
        smtp.ehlo("client.example")
        assert smtp.mail(account.user_email)[0] == 250
        assert smtp.rcpt(account.bcc_address)[0] == 250
        code, text = smtp.data(msg.as_bytes(policy=policy.SMTP))
    return code, text.decode()


def log(server: Server, account: PortalAccount, msg: EmailMessage) -> int:
    """Send ``msg`` and return the id of the logged email."""
    code, text = send(server, account, msg)
    assert (code, text.split()[:2]) == (250, ["2.0.0", "logged"]), text
    return int(text.split()[2])


def get_json(server: Server, token: str, path: str, status: int = 200) -> dict[str, Any]:
    with server.api(token) as api:
        response = api.get(path)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


SPEC_SETTINGS = ("log_attachments", "auto_create_contacts", "never_log")


def spec_settings(body: dict[str, Any]) -> dict[str, Any]:
    """The settings the SPEC names (the product may add more)."""
    return {key: body[key] for key in SPEC_SETTINGS}


def patch_settings(server: Server, account: PortalAccount, body: object) -> dict[str, Any]:
    with server.api(account.admin_token) as api:
        response = api.patch("/api/v1/settings", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="module")
def shared(server: Server) -> PortalAccount:
    """One portal for the tests that only read or are refused: it has one email to Dana."""
    account = server.new_portal()
    log(server, account, make_message(account))
    return account


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def contact_by_email(server: Server, account: PortalAccount, address: str) -> dict[str, Any]:
    items = get_json(server, account.user_token, f"/api/v1/contacts?email={address}")["items"]
    assert len(items) == 1, items
    result: dict[str, Any] = items[0]
    return result


# --- authentication -------------------------------------------------------------------


def test_missing_token_is_401_with_challenge(server: Server) -> None:
    """A request without Authorization answers 401 unauthorized with WWW-Authenticate."""
    with server.api(None) as api:
        response = api.get("/api/v1/me")
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


@pytest.mark.parametrize("header", [
    "Basic dXNlcjpwYXNz",
    "Bearer",
    "Bearer ilu_one ilu_two",
    "Token ilu_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "Bearer ilu_" + "x" * 43,
    "Bearer ila_" + "y" * 43,
    "Bearer not-a-token-at-all",
    "Bearer " + "a" * 5000,
])
def test_bad_tokens_are_401(server: Server, header: str) -> None:
    """Malformed schemes, unknown tokens and tokens of the wrong shape answer 401."""
    with server.api(None) as api:
        response = api.get("/api/v1/me", headers={"Authorization": header})
    assert_error(response, 401, "unauthorized")
    assert "www-authenticate" in response.headers


def test_admin_and_user_tokens_identify_their_portal(server: Server, shared: PortalAccount) -> None:
    """/me tells the role, the portal and its logging address for both token kinds."""
    admin = get_json(server, shared.admin_token, "/api/v1/me")
    assert admin["role"] == "admin"
    assert admin["user"] is None
    assert admin["portal"]["id"] == shared.portal_id
    assert admin["portal"]["bcc_address"] == shared.bcc_address

    user = get_json(server, shared.user_token, "/api/v1/me")
    assert user["role"] == "user"
    assert user["portal"] == admin["portal"]
    assert user["user"]["id"] == shared.user_id
    assert user["user"]["email"] == shared.user_email
    assert user["user"]["addresses"] == [shared.user_email]


def test_scheme_is_case_insensitive(server: Server, shared: PortalAccount) -> None:
    """`bearer <token>` in lower case is accepted like `Bearer`."""
    with server.api(None) as api:
        response = api.get("/api/v1/me", headers={"Authorization": f"bearer {shared.user_token}"})
    assert response.status_code == 200
    assert response.json()["role"] == "user"


# --- tenant isolation -----------------------------------------------------------------


def test_other_portals_ids_are_404(server: Server) -> None:
    """Portal A's email, contact, thread and attachment ids are 404 (not 403) for portal B."""
    a, b = server.new_portal(), server.new_portal()
    msg = make_message(a, to="Ola <ola@isolated.example>",
                       attachments=(("secret.txt", "text/plain", b"portal A only"),))
    email_id = log(server, a, msg)
    email = get_json(server, a.user_token, f"/api/v1/emails/{email_id}")
    contact_id = email["contact_ids"][0]
    attachment_id = email["attachments"][0]["id"]
    paths = [
        f"/api/v1/emails/{email_id}",
        f"/api/v1/contacts/{contact_id}",
        f"/api/v1/contacts/{contact_id}/timeline",
        f"/api/v1/contacts/{contact_id}/attachments",
        f"/api/v1/threads/{email['thread_id']}",
        f"/api/v1/attachments/{attachment_id}",
    ]
    with server.api(a.user_token) as api_a:
        assert [api_a.get(p).status_code for p in paths] == [200] * len(paths)
    for token in (b.user_token, b.admin_token):
        with server.api(token) as api_b:
            for path in paths:
                assert_error(api_b.get(path), 404, "not_found")


def test_lookups_do_not_cross_portals(server: Server) -> None:
    """?email= and ?message_id= find nothing of another portal; paging lists only its own."""
    a, b = server.new_portal(), server.new_portal()
    msg = make_message(a, to="ola@isolated.example")
    log(server, a, msg)
    message_id = msg["Message-ID"]
    assert get_json(server, a.user_token, "/api/v1/contacts?email=ola@isolated.example")["items"]
    assert get_json(server, b.user_token, "/api/v1/contacts?email=ola@isolated.example") == {
        "items": []}
    assert get_json(server, b.admin_token, f"/api/v1/emails?message_id={message_id}") == {
        "items": []}
    assert get_json(server, b.user_token, "/api/v1/contacts") == {"items": [], "cursor": None}


# --- contacts ---------------------------------------------------------------------------


def test_contact_lookup_is_case_insensitive(server: Server, account: PortalAccount) -> None:
    """?email= finds the contact whatever the case of the address on either side."""
    log(server, account, make_message(account, to="Dana Buyer <Dana.Buyer@Acme.Example>"))
    for query in ("dana.buyer@acme.example", "DANA.BUYER@ACME.EXAMPLE", "Dana.Buyer@acme.example"):
        contact = contact_by_email(server, account, query)
        assert contact["email"] == "dana.buyer@acme.example"
    assert get_json(server, account.user_token,
                    "/api/v1/contacts?email=nobody@acme.example") == {"items": []}


def test_contact_shape(server: Server, account: PortalAccount) -> None:
    """/contacts/{id} is exactly id, email, name, company_id and created_at."""
    before = datetime.now(UTC).replace(microsecond=0)
    log(server, account, make_message(account, to="Dana Buyer <dana@acme.example>"))
    found = contact_by_email(server, account, "dana@acme.example")
    contact = get_json(server, account.user_token, f"/api/v1/contacts/{found['id']}")
    assert contact == found
    assert set(contact) == {"id", "email", "name", "company_id", "created_at"}
    assert contact["email"] == "dana@acme.example"
    assert contact["name"] == "Dana Buyer"
    assert isinstance(contact["company_id"], int)
    created = datetime.fromisoformat(contact["created_at"])
    assert created.tzinfo is not None
    assert before <= created <= datetime.now(UTC)


def test_companies_by_domain(server: Server, account: PortalAccount) -> None:
    """Two addresses at one domain share a company; free mail joins none."""
    log(server, account, make_message(
        account, to="dana@acme.example, Sam <sam@acme.example>, pat@gmail.com, lee@other.example"))
    dana = contact_by_email(server, account, "dana@acme.example")
    sam = contact_by_email(server, account, "sam@acme.example")
    gmail = contact_by_email(server, account, "pat@gmail.com")
    other = contact_by_email(server, account, "lee@other.example")
    assert dana["company_id"] is not None
    assert sam["company_id"] == dana["company_id"]
    assert other["company_id"] not in (None, dana["company_id"])
    assert gmail["company_id"] is None


def test_timeline_is_newest_first(server: Server, account: PortalAccount) -> None:
    """A contact's timeline lists their emails by Date, newest first, whatever the log order."""
    for day in (2, 1, 3):
        log(server, account, make_message(
            account, subject=f"Day {day}", date=datetime(2024, 3, day, 9, 30, tzinfo=UTC)))
    contact = contact_by_email(server, account, "dana@acme.example")
    items = get_json(server, account.user_token,
                     f"/api/v1/contacts/{contact['id']}/timeline")["items"]
    assert [i["subject"] for i in items] == ["Day 3", "Day 2", "Day 1"]
    assert [i["sent_at"] for i in items] == [
        "2024-03-03T09:30:00Z", "2024-03-02T09:30:00Z", "2024-03-01T09:30:00Z"]
    assert all(i["contact_ids"] == [contact["id"]] for i in items)
    assert items[0]["snippet"] == "Hello Dana, here is the proposal."
    limited = get_json(server, account.user_token,
                       f"/api/v1/contacts/{contact['id']}/timeline?limit=1")["items"]
    assert [i["subject"] for i in limited] == ["Day 3"]


@pytest.mark.parametrize("limit", ["0", "201", "abc", "-1", "1.5", ""])
def test_limit_is_validated(server: Server, shared: PortalAccount, limit: str) -> None:
    """limit outside 1..200 or not an integer answers 400 on the contact list and timeline."""
    contact = contact_by_email(server, shared, "dana@acme.example")
    with server.api(shared.user_token) as api:
        for path in ("/api/v1/contacts", f"/api/v1/contacts/{contact['id']}/timeline"):
            assert_error(api.get(path, params={"limit": limit}), 400, "bad_request")


def test_contacts_paging(server: Server, account: PortalAccount) -> None:
    """Without ?email= the contacts come in id order, `limit` at a time, with a cursor."""
    log(server, account, make_message(account, to="a@one.example, b@two.example, c@three.example"))
    first = get_json(server, account.user_token, "/api/v1/contacts?limit=2")
    assert [c["email"] for c in first["items"]] == ["a@one.example", "b@two.example"]
    assert first["cursor"] == first["items"][-1]["id"]
    second = get_json(server, account.user_token,
                      f"/api/v1/contacts?limit=2&after={first['cursor']}")
    assert [c["email"] for c in second["items"]] == ["c@three.example"]
    assert second["cursor"] is None
    everything = get_json(server, account.user_token, "/api/v1/contacts")
    assert [c["id"] for c in everything["items"]] == [
        c["id"] for c in first["items"] + second["items"]]
    with server.api(account.user_token) as api:
        assert_error(api.get("/api/v1/contacts?after=-1"), 400, "bad_request")


# --- emails -------------------------------------------------------------------------------


def test_email_by_id(server: Server, account: PortalAccount) -> None:
    """/emails/{id} returns the logged email with its people, body and tracking counts."""
    msg = make_message(account, to="Dana Buyer <dana@acme.example>", subject="Quote 42",
                       date=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC))
    msg["Cc"] = "Sam <sam@acme.example>"
    email_id = log(server, account, msg)
    email = get_json(server, account.user_token, f"/api/v1/emails/{email_id}")
    dana = contact_by_email(server, account, "dana@acme.example")
    sam = contact_by_email(server, account, "sam@acme.example")
    assert email["id"] == email_id
    assert email["message_id"] == msg["Message-ID"].strip("<>")
    assert email["direction"] == "outgoing"
    assert email["sources"] == ["bcc"]
    assert email["from"] == {"email": account.user_email, "name": "Rita Rep"}
    assert email["to"] == [{"email": "dana@acme.example", "name": "Dana Buyer"}]
    assert email["cc"] == [{"email": "sam@acme.example", "name": "Sam"}]
    assert email["subject"] == "Quote 42"
    assert email["sent_at"] == "2024-05-06T07:08:09Z"
    assert email["text"] == "Hello Dana,\nhere is the proposal.\n"
    assert sorted(email["contact_ids"]) == sorted([dana["id"], sam["id"]])
    assert email["attachments"] == []
    assert email["tracking"] == {"opens": 0, "clicks": 0, "machine_opens": 0, "machine_clicks": 0}
    assert isinstance(email["thread_id"], int)


def test_email_by_message_id(server: Server, account: PortalAccount) -> None:
    """?message_id= finds the email with or without angle brackets."""
    msg = make_message(account)
    email_id = log(server, account, msg)
    bare = msg["Message-ID"].strip("<>")
    with server.api(account.user_token) as api:
        for value in (f"<{bare}>", bare, f" <{bare}> "):
            response = api.get("/api/v1/emails", params={"message_id": value})
            assert response.status_code == 200
            assert [e["id"] for e in response.json()["items"]] == [email_id]
        unknown = api.get("/api/v1/emails", params={"message_id": "<nope@nowhere.example>"})
        assert unknown.json() == {"items": []}


@pytest.mark.parametrize("query", ["", "?message_id=", "?message_id=%3C%3E", "?other=1"])
def test_email_lookup_needs_message_id(server: Server, shared: PortalAccount, query: str) -> None:
    """/emails without a non-empty message_id answers 400."""
    with server.api(shared.user_token) as api:
        assert_error(api.get(f"/api/v1/emails{query}"), 400, "bad_request")


def test_email_html_is_sanitized(server: Server, account: PortalAccount) -> None:
    """Scripts and event handlers are gone from the html; harmless markup stays."""
    html = ('<p onclick="steal()">Hello <b>there</b></p><script>alert(1)</script>'
            '<a href="javascript:alert(2)" onmouseover="x()">bad link</a>'
            '<a href="https://acme.example/">good link</a>')
    email_id = log(server, account, make_message(account, html=html))
    email = get_json(server, account.user_token, f"/api/v1/emails/{email_id}")
    lowered = email["html"].lower()
    for banned in ("<script", "alert(1)", "onclick", "onmouseover", "javascript:"):
        assert banned not in lowered
    assert "<b>there</b>" in email["html"]
    assert 'href="https://acme.example/"' in email["html"]


@pytest.mark.parametrize("email_id", ["abc", "-1", "1.0", "0", str(2**70), str(2**63)])
def test_bad_email_ids_are_404(server: Server, shared: PortalAccount, email_id: str) -> None:
    """Ids that are not integers, zero or beyond the 64-bit range answer a 404 JSON error."""
    with server.api(shared.user_token) as api:
        assert_error(api.get(f"/api/v1/emails/{email_id}"), 404, "not_found")
        assert_error(api.get(f"/api/v1/threads/{email_id}"), 404, "not_found")
        assert_error(api.get(f"/api/v1/contacts/{email_id}"), 404, "not_found")
        assert_error(api.get(f"/api/v1/attachments/{email_id}"), 404, "not_found")


# --- threads ------------------------------------------------------------------------------


def test_replies_share_the_thread_oldest_first(server: Server, account: PortalAccount) -> None:
    """Replies to a logged email land on its thread, listed by Date, oldest first."""
    first = make_message(account, subject="Proposal",
                         date=datetime(2024, 6, 1, 10, 0, tzinfo=UTC))
    first_id = log(server, account, first)
    late = make_message(account, subject="Re: Proposal", in_reply_to=first["Message-ID"],
                        date=datetime(2024, 6, 3, 10, 0, tzinfo=UTC))
    late_id = log(server, account, late)
    early = make_message(account, subject="Re: Proposal", in_reply_to=first["Message-ID"],
                         date=datetime(2024, 6, 2, 10, 0, tzinfo=UTC))
    early_id = log(server, account, early)
    thread_id = get_json(server, account.user_token, f"/api/v1/emails/{first_id}")["thread_id"]
    for email_id in (late_id, early_id):
        email = get_json(server, account.user_token, f"/api/v1/emails/{email_id}")
        assert email["thread_id"] == thread_id
    thread = get_json(server, account.user_token, f"/api/v1/threads/{thread_id}")
    assert set(thread) == {"id", "subject", "emails"}
    assert thread["id"] == thread_id
    assert thread["subject"] == "Proposal"
    assert [e["id"] for e in thread["emails"]] == [first_id, early_id, late_id]


# --- attachments --------------------------------------------------------------------------


PDF = b"%PDF-1.4\n\x00\x01\x02\xff binary \r\n bytes\n%%EOF\n"


def test_attachment_download(server: Server, account: PortalAccount) -> None:
    """The download is the exact bytes, as an attachment, never sniffed."""
    email_id = log(server, account, make_message(
        account, attachments=(("report.pdf", "application/pdf", PDF),)))
    email = get_json(server, account.user_token, f"/api/v1/emails/{email_id}")
    [listed] = email["attachments"]
    assert listed["filename"] == "report.pdf"
    assert listed["content_type"] == "application/pdf"
    assert listed["size"] == len(PDF)
    assert listed["sha256"] == hashlib.sha256(PDF).hexdigest()
    with server.api(account.user_token) as api:
        response = api.get(f"/api/v1/attachments/{listed['id']}")
    assert response.status_code == 200
    assert response.content == PDF
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="report.pdf"'
    assert response.headers["x-content-type-options"] == "nosniff"


def test_attachment_non_ascii_filename(server: Server, account: PortalAccount) -> None:
    """A non-ASCII filename round-trips through an RFC 5987 filename* parameter."""
    filename = "Angebot für Müller – 2024 ✓.txt"
    email_id = log(server, account, make_message(
        account, attachments=((filename, "text/plain", b"Danke!\n"),)))
    [listed] = get_json(server, account.user_token, f"/api/v1/emails/{email_id}")["attachments"]
    assert listed["filename"] == filename
    with server.api(account.user_token) as api:
        response = api.get(f"/api/v1/attachments/{listed['id']}")
    assert response.status_code == 200
    assert response.content == b"Danke!\n"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    params = dict(p.strip().split("=", 1) for p in disposition.split(";")[1:])
    charset, _, quoted = params["filename*"].partition("''")
    assert charset.lower() == "utf-8"
    assert unquote(quoted) == filename


def test_contact_attachments_list_every_file(server: Server, account: PortalAccount) -> None:
    """A contact's attachments are every file of their emails, each with its email_id."""
    one = log(server, account, make_message(account, attachments=(
        ("a.txt", "text/plain", b"first"), ("b.csv", "text/csv", b"x,y\n1,2\n"))))
    two = log(server, account, make_message(account, attachments=(
        ("c.pdf", "application/pdf", PDF),)))
    log(server, account, make_message(account, to="someone@else.example", attachments=(
        ("not-dana.txt", "text/plain", b"other contact"),)))
    contact = contact_by_email(server, account, "dana@acme.example")
    items = get_json(server, account.user_token,
                     f"/api/v1/contacts/{contact['id']}/attachments")["items"]
    assert sorted((i["filename"], i["email_id"]) for i in items) == [
        ("a.txt", one), ("b.csv", one), ("c.pdf", two)]
    by_name = {i["filename"]: i for i in items}
    assert by_name["b.csv"]["size"] == 8
    assert by_name["c.pdf"]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert all(i["stored"] is True for i in items)


# --- settings -----------------------------------------------------------------------------


def test_settings_defaults(server: Server, account: PortalAccount) -> None:
    """A new portal logs attachments, creates contacts and has an empty never-log list."""
    for token in (account.user_token, account.admin_token):
        assert spec_settings(get_json(server, token, "/api/v1/settings")) == {
            "log_attachments": True, "auto_create_contacts": True, "never_log": []}


def test_patch_each_setting(server: Server, account: PortalAccount) -> None:
    """PATCH changes only the fields given and the change is kept."""
    assert spec_settings(patch_settings(server, account, {"log_attachments": False})) == {
        "log_attachments": False, "auto_create_contacts": True, "never_log": []}
    assert spec_settings(patch_settings(server, account, {"auto_create_contacts": False})) == {
        "log_attachments": False, "auto_create_contacts": False, "never_log": []}
    assert spec_settings(patch_settings(
        server, account, {"never_log": ["boss@rival.example"]})) == {
        "log_attachments": False, "auto_create_contacts": False,
        "never_log": ["boss@rival.example"]}
    assert spec_settings(patch_settings(server, account, {"log_attachments": True})) == {
        "log_attachments": True, "auto_create_contacts": False,
        "never_log": ["boss@rival.example"]}
    assert patch_settings(server, account, {}) == get_json(
        server, account.user_token, "/api/v1/settings")
    assert spec_settings(get_json(server, account.user_token, "/api/v1/settings")) == {
        "log_attachments": True, "auto_create_contacts": False,
        "never_log": ["boss@rival.example"]}


def test_never_log_entries_are_normalized(server: Server, account: PortalAccount) -> None:
    """never_log addresses and domains are lower-cased, a domain's leading @ is dropped."""
    body = patch_settings(server, account, {"never_log": [
        "Boss@Rival.Example", "@Competitor.Example", " partner.example ", "boss@rival.example"]})
    assert body["never_log"] == ["boss@rival.example", "competitor.example", "partner.example"]


@pytest.mark.parametrize("body", [
    {"log_attachments": "yes"},
    {"log_attachments": 0},
    {"auto_create_contacts": None},
    {"auto_create_contacts": 1},
    {"never_log": "rival.example"},
    {"never_log": {"rival.example": True}},
    {"never_log": [42]},
    {"never_log": [""]},
    {"never_log": ["not an address"]},
    {"never_log": ["@"]},
    {"never_log": ["boss@"]},
    {"never_log": ["localhost"]},
    {"colour": "red"},
    {"log_attachments": False, "never_log": ["bad entry"]},
])
def test_invalid_settings_are_422(server: Server, shared: PortalAccount,
                                  body: dict[str, Any]) -> None:
    """A wrong type, a bad never_log entry or an unknown field answers 422, changing nothing."""
    before = get_json(server, shared.user_token, "/api/v1/settings")
    assert spec_settings(before) == {
        "log_attachments": True, "auto_create_contacts": True, "never_log": []}
    with server.api(shared.admin_token) as api:
        assert_error(api.patch("/api/v1/settings", json=body), 422, "invalid_input")
    assert get_json(server, shared.user_token, "/api/v1/settings") == before


@pytest.mark.parametrize("content", [b"not json", b"{", b"[1, 2]", b"\xff\xfe", b"", b"null"])
def test_settings_body_must_be_a_json_object(
    server: Server, shared: PortalAccount, content: bytes
) -> None:
    """A PATCH body that is not a JSON object answers 400."""
    with server.api(shared.admin_token) as api:
        response = api.patch("/api/v1/settings", content=content,
                             headers={"Content-Type": "application/json"})
    assert_error(response, 400, "bad_request")


def test_attachments_not_stored_when_disabled(server: Server, account: PortalAccount) -> None:
    """With log_attachments off, files are listed as not stored and downloads say not_stored."""
    patch_settings(server, account, {"log_attachments": False})
    email_id = log(server, account, make_message(
        account, attachments=(("quote.pdf", "application/pdf", PDF),)))
    [listed] = get_json(server, account.user_token, f"/api/v1/emails/{email_id}")["attachments"]
    assert listed["stored"] is False
    assert listed["filename"] == "quote.pdf"
    assert listed["size"] == len(PDF)
    with server.api(account.user_token) as api:
        assert_error(api.get(f"/api/v1/attachments/{listed['id']}"), 404, "not_stored")


def test_no_contacts_created_when_disabled(server: Server, account: PortalAccount) -> None:
    """With auto_create_contacts off, an email to an unknown address creates no contact."""
    log(server, account, make_message(account, to="known@acme.example"))
    patch_settings(server, account, {"auto_create_contacts": False})
    email_id = log(server, account, make_message(
        account, to="stranger@newco.example, known@acme.example"))
    known = contact_by_email(server, account, "known@acme.example")
    assert get_json(server, account.user_token,
                    "/api/v1/contacts?email=stranger@newco.example") == {"items": []}
    email = get_json(server, account.user_token, f"/api/v1/emails/{email_id}")
    assert email["contact_ids"] == [known["id"]]
    assert [c["email"] for c in get_json(server, account.user_token,
                                         "/api/v1/contacts")["items"]] == ["known@acme.example"]


def test_never_log_domain_is_not_logged(server: Server, account: PortalAccount) -> None:
    """An email only to a never-log domain is accepted, not stored, and creates no contact."""
    patch_settings(server, account, {"never_log": ["secret.example"]})
    msg = make_message(account, to="Agent <Agent@Secret.Example>")
    code, text = send(server, account, msg)
    assert code == 250
    assert text.startswith("2.0.0 not logged: ")
    assert get_json(server, account.user_token,
                    f"/api/v1/emails?message_id={msg['Message-ID']}") == {"items": []}
    assert get_json(server, account.user_token, "/api/v1/contacts") == {"items": [],
                                                                         "cursor": None}


def test_never_log_address_is_left_out(server: Server, account: PortalAccount) -> None:
    """An email to a never-log address and another one is logged without the blocked
    address: no contact, and not among the stored recipients either."""
    patch_settings(server, account, {"never_log": ["boss@rival.example"]})
    email_id = log(server, account, make_message(
        account, to="boss@rival.example, dana@acme.example"))
    dana = contact_by_email(server, account, "dana@acme.example")
    email = get_json(server, account.user_token, f"/api/v1/emails/{email_id}")
    assert email["contact_ids"] == [dana["id"]]
    assert [p["email"] for p in email["to"]] == ["dana@acme.example"]
    assert get_json(server, account.user_token,
                    "/api/v1/contacts?email=boss@rival.example") == {"items": []}


# --- routing and health -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/contacts/1/nope", "/nope", "/api/v2/me"])
def test_unknown_route_is_json_404(server: Server, shared: PortalAccount, path: str) -> None:
    """A path no route serves answers a 404 JSON error."""
    with server.api(shared.user_token) as api:
        assert_error(api.get(path), 404, "not_found")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/api/v1/me", {"GET"}),
    ("POST", "/api/v1/contacts", {"GET"}),
    ("PUT", "/api/v1/settings", {"GET", "PATCH"}),
    ("POST", "/healthz", {"GET"}),
])
def test_wrong_method_is_json_405(
    server: Server, shared: PortalAccount, method: str, path: str, allowed: set[str]
) -> None:
    """A method a route does not serve answers a 405 JSON error naming the allowed ones."""
    with server.api(shared.user_token) as api:
        response = api.request(method, path)
    assert_error(response, 405, "method_not_allowed")
    listed = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed <= listed
    assert method not in listed


def test_healthz(server: Server) -> None:
    """/healthz needs no token and reports the database reachable."""
    with server.api(None) as api:
        response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
