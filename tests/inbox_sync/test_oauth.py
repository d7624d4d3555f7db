"""Connected inboxes with OAuth 2.0, end to end against real servers: a local Authlib
authorization server, Dovecot with its oauth2 passdb (token introspection), an SMTP
server taking XOAUTH2, and `inboxlog serve` driven through its HTTP port."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from imapclient import IMAPClient

from tests.extension_api.test_openapi import check
from tests.inbox_sync.conftest import new_portal
from tests.support.dovecot import SENT
from tests.support.dovecot_oauth import OAuthDovecot
from tests.support.mail import deliver, logged_id, message
from tests.support.oauth_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    RESOURCE_ID,
    RESOURCE_SECRET,
    OAuthTestServer,
)
from tests.support.server import PortalAccount, Server, free_port
from tests.support.smtp_oauth import OAuthSmtpRecorder


@dataclass
class Stack:
    auth: OAuthTestServer
    dovecot: OAuthDovecot
    smtp: OAuthSmtpRecorder
    server: Server


def _provider_args(name: str, auth: OAuthTestServer, dovecot: OAuthDovecot,
                   smtp: OAuthSmtpRecorder) -> dict[str, str]:
    base = auth.base_url
    return {f"INBOXLOG_OAUTH_{name}_{key}": value for key, value in {
        "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET,
        "AUTHORIZE_URL": f"{base}/authorize", "TOKEN_URL": f"{base}/token",
        "REVOCATION_URL": f"{base}/revoke", "USERINFO_URL": f"{base}/userinfo",
        "SCOPES": "openid email mail",
        "IMAP": f"127.0.0.1:{dovecot.imap_port}:none",
        "SMTP": f"127.0.0.1:{smtp.port}:none"}.items()}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("oauth-server")
    server = Server(data, extra_args=("--inbox-poll-interval", "1"))
    auth = OAuthTestServer(f"{server.base_url}/oauth/callback").start()
    introspect = f"http://{RESOURCE_ID}:{RESOURCE_SECRET}@127.0.0.1:{auth.port}/introspect"
    dovecot = OAuthDovecot(introspect).start()
    smtp = OAuthSmtpRecorder(tmp_path_factory.mktemp("smtp-oauth"), free_port(),
                             introspect).start()
    # The generic provider, and Google with every endpoint pointed here (its SMTP
    # server files sent mail itself, so no copy is appended).
    server.extra_env.update({
        **_provider_args("OIDC", auth, dovecot, smtp),
        **_provider_args("GOOGLE", auth, dovecot, smtp),
        "INBOXLOG_ALLOW_OAUTH_HOSTS": f"127.0.0.1:{auth.port}",
        # Authlib refuses plain-HTTP token endpoints unless told this is a test.
        "AUTHLIB_INSECURE_TRANSPORT": "1"})
    server.start()
    try:
        yield Stack(auth, dovecot, smtp, server)
    finally:
        server.stop()
        smtp.stop()
        dovecot.stop()
        auth.stop()


@dataclass
class User:
    stack: Stack
    account: PortalAccount

    @property
    def address(self) -> str:
        return self.account.user_email

    def api(self) -> httpx.Client:
        return self.stack.server.api(self.account.user_token)

    def connect(self, provider: str = "oidc") -> dict[str, str]:
        """The whole browser-less flow: authorization URL, the provider's redirect with
        a code, the callback, the result page. The result page's query."""
        self.stack.auth.approve_as = self.address
        with self.api() as api:
            started = api.post(f"/api/v1/inboxes/oauth/{provider}")
            assert started.status_code == 200, started.text
            check(api.get("/openapi.json").json(), "/api/v1/inboxes/oauth/{provider}",
                  "post", 200, started.json())
        return follow(started.json()["authorization_url"])

    def inbox(self) -> dict[str, Any]:
        with self.api() as api:
            (inbox,) = api.get("/api/v1/inboxes").json()["items"]
        return dict(inbox)

    def imap(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", self.stack.dovecot.imap_port, ssl=False, timeout=10)
        client.oauth2_login(self.address, self.stack.auth.issue_token(self.address))
        return client

    def receive_reply(self, thread: str, subject: str = "Re: Proposal") -> str:
        reply = message(sender="ann@acme.example", to=self.address, subject=subject,
                        message_id=f"<{uuid.uuid4().hex}@acme.example>", in_reply_to=thread)
        with self.imap() as client:
            client.append("INBOX", reply.as_bytes(), msg_time=datetime.now(UTC))
        return str(reply["Message-ID"]).strip("<>")

    def seed_thread(self) -> str:
        first = f"<{uuid.uuid4().hex}@mail.test>"
        logged_id(deliver(self.stack.server, message(
            sender=self.address, to="ann@acme.example", message_id=first,
            subject="Proposal"), self.account.bcc_address, mail_from=self.address))
        return first

    def logged(self, message_id: str) -> list[Any]:
        with self.api() as api:
            return list(api.get("/api/v1/emails", params={"message_id": message_id})
                        .json()["items"])


def follow(authorization_url: str) -> dict[str, str]:
    """The browser: to the provider (which approves at once), back to the callback,
    on to the result page (which must render)."""
    at_provider = httpx.get(authorization_url, timeout=30)
    assert at_provider.status_code == 302, at_provider.text
    callback = at_provider.headers["location"]
    back = httpx.get(callback, timeout=60)
    assert back.status_code == 303, back.text
    result_url = httpx.URL(callback).join(back.headers["location"])
    page = httpx.get(result_url, timeout=30)
    assert page.status_code == 200 and "<h1>" in page.text
    query = {k: v[0] for k, v in parse_qs(urlparse(str(result_url)).query).items()}
    return {**query, "callback": callback, "page": page.text}


@pytest.fixture
def user(stack: Stack) -> User:
    address = f"rep-{uuid.uuid4().hex[:10]}@ourco.example"
    return User(stack, new_portal(stack.server, address))


def _wait(predicate: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_flow_connects_syncs_and_sends_with_tokens(user: User) -> None:
    """Authorization code with PKCE S256 and a signed state → callback → an inbox that
    syncs over IMAP XOAUTH2 and sends over SMTP XOAUTH2 with its Sent copy; the tokens
    are encrypted at rest and never shown nor logged."""
    stack = user.stack
    with user.api() as api:
        url = api.post("/api/v1/inboxes/oauth/oidc").json()["authorization_url"]
    query = parse_qs(urlparse(url).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["client_id"] == [CLIENT_ID] and "code_verifier" not in query
    assert query["redirect_uri"] == [f"{stack.server.base_url}/oauth/callback"]
    stack.auth.approve_as = user.address
    result = follow(url)
    assert (result["status"], result["code"]) == ("connected", "connected"), result
    inbox = user.inbox()
    assert inbox["id"] == int(result["inbox_id"])
    assert (inbox["auth"], inbox["oauth_provider"], inbox["status"]) == (
        "oauth", "oidc", "connected")
    assert inbox["imap"]["port"] == stack.dovecot.imap_port
    with user.api() as api:
        check(api.get("/openapi.json").json(), "/api/v1/inboxes", "get", 200,
              api.get("/api/v1/inboxes").json())

    # The same callback URL again: a state is good once.
    again = httpx.get(result["callback"], timeout=30)
    assert "oauth_state_invalid" in again.headers["location"]

    thread = user.seed_thread()
    reply = user.receive_reply(thread)
    with user.api() as api:
        synced = api.post(f"/api/v1/inboxes/{inbox['id']}/sync")
        assert synced.status_code == 200, synced.text
    assert len(user.logged(reply)) == 1

    with user.api() as api:
        sent = api.post("/api/v1/emails/send", json={
            "to": ["ann@acme.example"], "subject": "Re: Proposal", "text": "Here it is",
            "in_reply_to": thread.strip("<>")})
        assert sent.status_code == 201, sent.text
        assert sent.json()["sent_folder"] == SENT
    envelope, raw = stack.smtp.messages()[-1]
    assert envelope["user"] == user.address and b"Here it is" in raw
    with user.imap() as client:
        client.select_folder(SENT, readonly=True)
        assert len(client.search(["HEADER", "Message-ID", sent.json()["message_id"]])) == 1

    tokens = [t for t in stack.auth.tokens if t.user == user.address and t.refresh_token]
    db = sqlite3.connect(stack.server.data_dir / "inboxlog.db")
    (secret,) = db.execute("select secret from inboxes where id = ?", (inbox["id"],)).fetchone()
    db.close()
    assert secret.startswith("gAAAA")
    for token in tokens:
        for value in (token.access_token, token.refresh_token):
            assert value not in secret and value not in stack.server.log()
            assert value not in str(inbox)


def test_an_expired_token_is_refreshed_once_and_the_rotation_kept(user: User) -> None:
    """The access token expires (Dovecot's introspection: inactive): the next login
    fails once, inboxlog refreshes, stores the rotated refresh token and goes on."""
    stack = user.stack
    assert user.connect()["code"] == "connected"
    inbox = user.inbox()
    before = stack.auth.calls.get("refresh", 0)
    first_refresh = stack.auth.active_refresh_tokens(user.address)
    stack.auth.expire_access_tokens(user.address)
    stack.dovecot.kick(user.address)  # the background IDLE connection logs in again
    thread = user.seed_thread()
    reply = user.receive_reply(thread)
    with user.api() as api:
        synced = api.post(f"/api/v1/inboxes/{inbox['id']}/sync")
        assert synced.status_code == 200, synced.text
    _wait(lambda: len(user.logged(reply)) == 1)
    assert stack.auth.calls.get("refresh", 0) == before + 1
    rotated = stack.auth.active_refresh_tokens(user.address)
    assert rotated and not set(rotated) & set(first_refresh)  # the old one is dead
    # The send uses the rotated grant without another refresh.
    with user.api() as api:
        sent = api.post("/api/v1/emails/send", json={"to": ["ann@acme.example"],
                                                      "subject": "Hi", "text": "x"})
        assert sent.status_code == 201, sent.text
    assert stack.auth.calls.get("refresh", 0) == before + 1
    assert user.inbox()["status"] == "connected"


def test_a_token_about_to_expire_is_refreshed_before_it_is_used(user: User) -> None:
    """Tokens valid for less than the refresh margin (5 min) are refreshed before a
    login, so no server ever sees an expired one."""
    stack = user.stack
    stack.auth.expires_in = 120
    try:
        assert user.connect()["code"] == "connected"
        failed = stack.smtp.failed_logins()
        before = stack.auth.calls.get("refresh", 0)
        with user.api() as api:
            sent = api.post("/api/v1/emails/send", json={"to": ["bob@buyer.example"],
                                                          "subject": "Hi", "text": "x"})
            assert sent.status_code == 201, sent.text
        assert stack.auth.calls.get("refresh", 0) > before
        assert stack.smtp.failed_logins() == failed
    finally:
        stack.auth.expires_in = 3600


def test_a_refused_refresh_disconnects_with_the_reason_and_reconnecting_resumes(
        user: User) -> None:
    """The user revoked the app (refresh: invalid_grant): the inbox is disconnected with
    oauth_revoked and one inbox_disconnected event, the worker stops (no loop of
    refreshes or logins); connecting again through the flow resumes from the checkpoint."""
    stack = user.stack
    assert user.connect()["code"] == "connected"
    inbox = user.inbox()
    thread = user.seed_thread()
    first = user.receive_reply(thread)
    with user.api() as api:
        assert api.post(f"/api/v1/inboxes/{inbox['id']}/sync").status_code == 200
    last_uid = {f["role"]: f["last_uid"] for f in user.inbox()["folders"]}["inbox"]
    assert last_uid >= 1 and len(user.logged(first)) == 1

    stack.auth.revoke_grants(user.address)
    stack.dovecot.kick(user.address)
    _wait(lambda: user.inbox()["status"] == "disconnected")
    gone = user.inbox()
    assert gone["status_code"] == "oauth_revoked", gone
    assert "invalid_grant" in gone["status_reason"]
    refreshes = stack.auth.calls.get("refresh", 0)
    time.sleep(3)  # the worker has stopped: no more refreshes
    assert stack.auth.calls.get("refresh", 0) == refreshes
    with user.api() as api:
        events = [e for e in api.get("/api/v1/events").json()["items"]
                  if e["type"] == "inbox_disconnected"]
        assert len(events) == 1 and events[0]["detail"]["code"] == "oauth_revoked"
        sending = api.post("/api/v1/emails/send", json={"to": ["ann@acme.example"],
                                                         "subject": "x", "text": "x"})
        assert sending.status_code == 409, sending.text

    second = user.receive_reply(thread, "Re: Proposal (2)")
    result = user.connect()
    assert (result["status"], result["code"]) == ("connected", "reconnected")
    back = user.inbox()
    assert back["id"] == inbox["id"] and back["status"] == "connected"
    assert back["status_code"] == ""
    with user.api() as api:
        report = api.post(f"/api/v1/inboxes/{inbox['id']}/sync").json()
    folder = {f["role"]: f for f in report["folders"]}["inbox"]
    assert folder["last_uid"] > last_uid
    _wait(lambda: len(user.logged(second)) == 1)
    assert len(user.logged(first)) == 1


def test_disconnecting_revokes_the_grant_at_the_provider(user: User) -> None:
    """POST .../disconnect revokes at the provider's revocation endpoint, forgets the
    tokens and stops syncing; the inbox says disconnected_by_user."""
    stack = user.stack
    assert user.connect()["code"] == "connected"
    _wait(lambda: user.inbox()["last_sync_at"] is not None)
    time.sleep(1.5)  # the background worker is in IDLE now: disconnecting must cut it short
    inbox = user.inbox()
    assert stack.auth.active_refresh_tokens(user.address)
    with user.api() as api:
        started = time.monotonic()
        gone = api.post(f"/api/v1/inboxes/{inbox['id']}/disconnect")
        assert gone.status_code == 200, gone.text
        assert time.monotonic() - started < 10
        check(api.get("/openapi.json").json(), "/api/v1/inboxes/{id}/disconnect", "post",
              200, gone.json())
    assert gone.json()["status"] == "disconnected"
    assert gone.json()["status_code"] == "disconnected_by_user"
    assert user.address in stack.auth.revoked
    assert stack.auth.active_refresh_tokens(user.address) == []
    db = sqlite3.connect(stack.server.data_dir / "inboxlog.db")
    (secret,) = db.execute("select secret from inboxes where id = ?", (inbox["id"],)).fetchone()
    db.close()
    assert secret == ""


def test_someone_elses_consent_connects_nothing(user: User) -> None:
    """Login CSRF: a user starts the flow and has someone else (a customer, a colleague)
    consent with their own mailbox; the grant's address is not one of the starting
    user's confirmed addresses, so nothing is connected and the page says why."""
    victim = f"victim-{uuid.uuid4().hex[:8]}@ourco.example"
    with user.api() as api:
        started = api.post("/api/v1/inboxes/oauth/oidc")
    assert started.status_code == 200, started.text
    user.stack.auth.approve_as = victim  # the victim's browser, the victim's consent
    result = follow(started.json()["authorization_url"])
    assert (result["status"], result["code"]) == ("failed", "address_not_confirmed")
    with user.api() as api:
        assert api.get("/api/v1/inboxes").json()["items"] == []
        assert victim not in api.get("/api/v1/me").json()["user"]["addresses"]


def test_failures_at_the_provider_land_on_the_result_page(user: User) -> None:
    """Denied consent, a grant without mail scope, the provider down: each a result
    page with its code (never a 500), and no inbox."""
    stack = user.stack
    stack.auth.deny = True
    try:
        assert user.connect()["code"] == "oauth_denied"
    finally:
        stack.auth.deny = False
    stack.auth.granted_scope = "openid email"
    try:
        result = user.connect()
        assert (result["status"], result["code"]) == ("failed", "oauth_scope_missing")
    finally:
        stack.auth.granted_scope = None
    stack.auth.down = True
    try:
        assert user.connect()["code"] == "provider_unavailable"
    finally:
        stack.auth.down = False
    with user.api() as api:
        assert api.get("/api/v1/inboxes").json()["items"] == []
    tampered = httpx.get(f"{stack.server.base_url}/oauth/callback",
                         params={"code": "x", "state": "gAAAAnot-a-state"}, timeout=30)
    assert tampered.status_code == 303 and "oauth_state_invalid" in tampered.headers["location"]
    with user.api() as api:
        unknown = api.post("/api/v1/inboxes/oauth/yahoo")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "oauth_not_configured"


def test_the_provider_down_during_a_refresh_is_temporary(user: User) -> None:
    """The token endpoint answers 503 when a refresh is due: provider_unavailable (503),
    the inbox is not disconnected, and it recovers once the provider is back."""
    stack = user.stack
    assert user.connect()["code"] == "connected"
    inbox = user.inbox()
    stack.auth.down = True
    try:
        stack.auth.expire_access_tokens(user.address)
        stack.dovecot.kick(user.address)
        with user.api() as api:
            response = api.post(f"/api/v1/inboxes/{inbox['id']}/sync")
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "provider_unavailable"
        assert user.inbox()["status"] != "disconnected"
    finally:
        stack.auth.down = False
    with user.api() as api:
        assert api.post(f"/api/v1/inboxes/{inbox['id']}/sync").status_code == 200
    assert user.inbox()["status"] == "connected"


def test_gmail_smtp_files_sent_mail_itself_so_no_copy_is_appended(user: User) -> None:
    """Through the google provider (endpoints pointed at the test servers), a send is
    not appended to Sent: Gmail's SMTP server files it there itself."""
    stack = user.stack
    assert user.connect("google")["code"] == "connected"
    assert user.inbox()["oauth_provider"] == "google"
    with user.api() as api:
        sent = api.post("/api/v1/emails/send", json={"to": ["ann@acme.example"],
                                                      "subject": "Via Gmail", "text": "x"})
        assert sent.status_code == 201, sent.text
    assert sent.json()["sent_folder"] is None and sent.json()["sent_copy_error"] is None
    assert stack.smtp.messages()[-1][0]["user"] == user.address
    with user.imap() as client:
        client.select_folder(SENT, readonly=True)
        assert client.search(["HEADER", "Message-ID", sent.json()["message_id"]]) == []
