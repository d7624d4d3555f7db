"""A team inbox's mailbox connected with OAuth 2.0, end to end against the real servers
of tests/inbox_sync/test_oauth.py (a local authorization server, Dovecot's oauth2
passdb, an SMTP server taking XOAUTH2, `inboxlog serve`): the admin signs in to the
shared mailbox; its mail becomes a ticket; the agent's reply goes out over XOAUTH2 with
its copy in Sent; only the admin starts or ends it."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from email.utils import make_msgid

from imapclient import IMAPClient

from tests.inbox_sync.test_oauth import Stack, follow, stack  # noqa: F401 (the fixture)
from tests.support.dovecot import SENT
from tests.support.mail import message
from tests.support.tickets import make_desk


def test_the_admin_connects_a_team_mailbox_with_oauth(stack: Stack) -> None:  # noqa: F811
    address = f"help-{uuid.uuid4().hex[:10]}@ourco.example"
    desk = make_desk(stack.server, address=address)
    team_id = desk.inbox["id"]
    start = "/api/v1/inboxes/oauth/oidc"
    with stack.server.api(desk.outsider["api_token"]) as api:
        assert api.post(start, json={"team_inbox_id": team_id}).status_code == 404
    with stack.server.api(desk.agents[0]["api_token"]) as api:
        assert api.post(start, json={"team_inbox_id": team_id}).status_code == 403
    with desk.api() as api:
        started = api.post(start, json={"team_inbox_id": team_id})
    assert started.status_code == 200, started.text
    stack.auth.approve_as = address
    result = follow(started.json()["authorization_url"])
    assert (result["status"], result["code"]) == ("connected", "connected"), result
    inbox_id = int(result["inbox_id"])
    with desk.api() as api:
        inbox = api.get(f"/api/v1/inboxes/{inbox_id}").json()
    assert (inbox["auth"], inbox["team_inbox_id"], inbox["user_id"]) == ("oauth", team_id, None)

    with IMAPClient("127.0.0.1", stack.dovecot.imap_port, ssl=False, timeout=10) as client:
        client.oauth2_login(address, stack.auth.issue_token(address))
        client.append("INBOX", message(
            sender="dora@customer.example", to=address, subject="Broken login",
            message_id=make_msgid(domain="customer.example")).as_bytes(),
            msg_time=datetime.now(UTC))
    deadline = time.monotonic() + 30
    while True:
        with desk.api(desk.agents[0]["api_token"]) as api:
            assert api.post(f"/api/v1/inboxes/{inbox_id}/sync").status_code == 200
            tickets = api.get("/api/v1/tickets", params={"team_inbox_id": team_id}).json()
        if tickets["items"]:
            break
        assert time.monotonic() < deadline, "the mail never became a ticket"
    [ticket] = tickets["items"]
    agent = next(a for a in desk.agents if a["id"] == ticket["assignee_user_id"])
    with desk.api(agent["api_token"]) as api:
        sent = api.post(f"/api/v1/tickets/{ticket['id']}/replies", json={"text": "Fixed."})
    assert sent.status_code == 201, sent.text
    envelope, raw = stack.smtp.messages()[-1]
    assert envelope["user"] == address and sent.json()["message_id"].encode() in raw
    with IMAPClient("127.0.0.1", stack.dovecot.imap_port, ssl=False, timeout=10) as client:
        client.oauth2_login(address, stack.auth.issue_token(address))
        client.select_folder(SENT, readonly=True)
        assert len(client.search(["HEADER", "Message-ID", sent.json()["message_id"]])) == 1

    with desk.api(agent["api_token"]) as api:
        assert api.post(f"/api/v1/inboxes/{inbox_id}/disconnect").status_code == 403
    with desk.api() as api:
        gone = api.post(f"/api/v1/inboxes/{inbox_id}/disconnect")
    assert gone.status_code == 200 and gone.json()["status_code"] == "disconnected_by_user"
