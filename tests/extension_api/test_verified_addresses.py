"""Verified alternate sender addresses (issue 15): a user adds an address over the API,
the confirmation link arrives through the operator's SMTP relay, and only once it is
followed does mail from that address log as the user's."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import email_validator
import pytest
from sqlalchemy import update

from core.storage.db import Database, sqlite_url
from core.storage.models import UserAddress
from tests.extension_api.test_openapi import check, properties
from tests.support.addresses import request_confirmation
from tests.support.dns import DnsServer
from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server, run_coroutine
from tests.support.smtp_recorder import SmtpRecorder

ALT = "rita.sales@other.example"
_LINK = re.compile(r"(http://\S+/confirm-address\?token=\S+)")


@pytest.fixture(scope="module")
def relayed(tmp_path_factory: pytest.TempPathFactory,
            relay: SmtpRecorder) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("relayed"),
                     extra_args=relay.serve_args()).start()
    yield running
    running.stop()


def add(server: Server, token: str, user_id: int, address: str) -> Any:
    with server.api(token) as api:
        return api.post(f"/api/v1/users/{user_id}/addresses", json={"address": address})


def addresses(server: Server, account: PortalAccount) -> dict[str, bool]:
    with server.api(account.user_token) as api:
        response = api.get(f"/api/v1/users/{account.user_id}/addresses")
    assert response.status_code == 200, response.text
    return {a["address"]: a["confirmed"] for a in response.json()["items"]}


def confirmations(relay: SmtpRecorder, address: str) -> list[tuple[dict[str, Any],
                                                                      EmailMessage]]:
    return [(envelope, message_from_bytes(raw, policy=policy.default))
            for envelope, raw in relay.messages() if envelope["rcpt_tos"] == [address]]


def link_in(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    found = _LINK.search(body.get_content())
    assert found, body.get_content()
    return found.group(1)


def bcc_from(server: Server, account: PortalAccount, sender: str,
             subject: str = "Quarterly numbers") -> tuple[int, str]:
    mail = message(sender=sender, to="carl@customer.example", subject=subject,
                   message_id=f"<{subject.replace(' ', '.')}.{account.portal_id}@other.example>")
    return deliver(server, mail, account.bcc_address, mail_from=sender)


def set_requested_at(server: Server, address: str, when: datetime) -> None:
    """What the passing of time does to a pending link, done in the server's database."""
    async def move() -> None:
        db = Database(server.db_url or sqlite_url(server.data_dir / "inboxlog.db"))
        try:
            async with db.transaction() as session:
                await session.execute(update(UserAddress).where(
                    UserAddress.address == address).values(requested_at=when))
        finally:
            await db.dispose()
    run_coroutine(move)


def confirm(server: Server, link: str) -> Any:
    token = link.partition("token=")[2]
    with server.api(None) as api:
        return api.post("/confirm-address", data={"token": token})


def test_an_added_address_logs_as_the_user_once_its_link_is_followed(
        relayed: Server, relay: SmtpRecorder) -> None:
    account = relayed.new_portal("rita@ourco.example")
    response = add(relayed, account.user_token, account.user_id, "Rita.Sales@Other.example")
    assert response.status_code == 201, response.text
    added = response.json()
    assert added["address"] == ALT and added["confirmed"] is False
    assert added["confirmation_sent"] is True and added["confirmation_expires_at"]
    assert addresses(relayed, account) == {"rita@ourco.example": True, ALT: False}
    with relayed.api(account.user_token) as api:
        document = api.get("/openapi.json").json()
        path = "/api/v1/users/{id}/addresses"
        check(document, path, "post", 201, added)
        listed = api.get(f"/api/v1/users/{account.user_id}/addresses").json()
        check(document, path, "get", 200, listed)
        assert set(listed["items"][0]) == properties(document, "UserAddress")

    [(envelope, mail)] = confirmations(relay, ALT)
    # The SMTP test server takes mail only after AUTH: the relay's credentials were used.
    assert envelope["mail_from"] == "inboxlog@bcc.test"
    assert mail["To"] == ALT and mail["Subject"] == "Confirm the address you send from"
    link = link_in(mail)
    assert link.startswith(f"{relayed.base_url}/confirm-address?token=ilc_")
    # Whole in the raw message too (7bit, no soft line breaks), for any mail reader.
    assert any(link.encode() in raw for _, raw in relay.messages())

    # Unconfirmed, the address is nobody's: BCC'd mail from it is refused.
    code, text = bcc_from(relayed, account, ALT)
    assert code == 550 and text.startswith("5.7.1"), text

    # Opening the link shows a button and confirms nothing (mail scanners open links).
    with relayed.api(None) as api:
        page = api.get(link)
    assert page.status_code == 200 and "<form method=post" in page.text and ALT in page.text
    assert addresses(relayed, account)[ALT] is False

    confirmed = confirm(relayed, link)
    assert confirmed.status_code == 200 and "data-state=confirmed" in confirmed.text
    assert addresses(relayed, account) == {"rita@ourco.example": True, ALT: True}
    email_id = logged_id(bcc_from(relayed, account, ALT))
    with relayed.api(account.user_token) as api:
        email = api.get(f"/api/v1/emails/{email_id}").json()
        assert email["direction"] == "outgoing" and email["from"]["email"] == ALT
        assert ALT in api.get("/api/v1/me").json()["user"]["addresses"]

    # The link works once.
    again = confirm(relayed, link)
    assert again.status_code == 404 and "data-state=confirmation_invalid" in again.text
    with relayed.api(None) as api:
        assert api.get(link, headers={"Accept": "application/json"}).json()["error"][
            "code"] == "confirmation_invalid"


def test_an_expired_link_is_refused_and_a_new_one_replaces_it(
        relayed: Server, relay: SmtpRecorder) -> None:
    account = relayed.new_portal("rita@late.example")
    address = "rita@expired.example"
    assert add(relayed, account.user_token, account.user_id, address).status_code == 201
    # At once again: the link just went out.
    resent = add(relayed, account.user_token, account.user_id, address)
    assert resent.status_code == 429
    assert resent.json()["error"]["code"] == "confirmation_recently_sent"
    [(_, first)] = confirmations(relay, address)

    set_requested_at(relayed, address, datetime.now(UTC) - timedelta(hours=48, minutes=1))
    with relayed.api(None) as api:
        assert api.get(link_in(first)).status_code == 410
    expired = confirm(relayed, link_in(first))
    assert expired.status_code == 410 and "data-state=confirmation_expired" in expired.text
    assert bcc_from(relayed, account, address)[0] == 550

    assert add(relayed, account.user_token, account.user_id, address).status_code == 201
    [_, (_, second)] = confirmations(relay, address)
    assert link_in(second) != link_in(first)
    assert confirm(relayed, link_in(first)).status_code == 404  # replaced
    with relayed.api(None) as api:
        response = api.post("/confirm-address", json={"token": link_in(second).partition(
            "token=")[2]})
    assert response.json() == {"address": address, "confirmed": True}
    logged_id(bcc_from(relayed, account, address))


def test_only_the_user_or_their_admin_manages_their_addresses(
        relayed: Server, relay: SmtpRecorder) -> None:
    account = relayed.new_portal("rita@roles.example")
    with relayed.api(account.admin_token) as api:
        colleague = api.post("/api/v1/users", json={"email": "carl@roles.example"}).json()
    path = f"/api/v1/users/{account.user_id}/addresses"
    with relayed.api(colleague["api_token"]) as api:
        assert api.get(path).status_code == 403
        assert api.post(path, json={"address": "carl@elsewhere.example"}).status_code == 403
        assert api.delete(f"{path}/1").status_code == 403
        # Nor can the colleague take Rita's address for themselves.
        taken = api.post(f"/api/v1/users/{colleague['id']}/addresses",
                         json={"address": "rita@roles.example"})
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "address_taken"
        # A guessed link confirms nothing.
        assert api.post("/confirm-address", data={"token": "ilc_guess"}).status_code == 404

    # The admin may add one for Rita; it still waits for Rita's link.
    by_admin = add(relayed, account.admin_token, account.user_id, "rita@admin-added.example")
    assert by_admin.status_code == 201 and by_admin.json()["confirmed"] is False
    with relayed.api(colleague["api_token"]) as api:
        pending = api.post(f"/api/v1/users/{colleague['id']}/addresses",
                           json={"address": "rita@admin-added.example"})
        assert pending.status_code == 409

    other = relayed.new_portal("rita@roles.example", name="Another portal")
    for token in (other.admin_token, other.user_token):
        with relayed.api(token) as api:
            assert api.get(path).status_code == 404
            assert api.post(path, json={"address": "x@roles.example"}).status_code == 404
    # In another portal the same address may be another user's (another CRM account).
    assert add(relayed, other.user_token, other.user_id,
               "rita@admin-added.example").status_code == 201
    assert add(relayed, account.user_token, account.user_id,
               "rita@roles.example").json()["error"]["code"] == "already_confirmed"
    for body in ({}, {"address": "not an address"}, {"address": 5},
                 {"address": "a@b.example", "more": 1}):
        with relayed.api(account.user_token) as api:
            assert api.post(path, json=body).status_code == 422, body


def test_a_removed_address_is_no_longer_the_users(relayed: Server,
                                                   relay: SmtpRecorder) -> None:
    account = relayed.new_portal("rita@remove.example")
    address = "rita@removed.example"
    added = add(relayed, account.user_token, account.user_id, address).json()
    [(_, mail)] = confirmations(relay, address)
    assert confirm(relayed, link_in(mail)).status_code == 200
    logged_id(bcc_from(relayed, account, address, "Before removal"))
    path = f"/api/v1/users/{account.user_id}/addresses"
    with relayed.api(account.user_token) as api:
        items = api.get(path).json()["items"]
        primary = next(a for a in items if a["primary"])
        assert api.delete(f"{path}/{primary['id']}").status_code == 422
        assert api.delete(f"{path}/{added['id']}").json()["address"] == address
        assert api.delete(f"{path}/{added['id']}").status_code == 404
    assert bcc_from(relayed, account, address, "After removal")[0] == 550


def test_a_relay_refusal_is_a_502_and_can_be_retried_at_once(relayed: Server) -> None:
    account = relayed.new_portal("rita@refusal.example")
    for _ in range(2):
        response = add(relayed, account.user_token, account.user_id, "rita@refused.example")
        assert response.status_code == 502, response.text
        assert response.json()["error"]["code"] == "smtp_relay_failed"
        assert "s3cret" not in response.text


def test_without_a_relay_nothing_is_stored_and_the_error_says_why(
        server: Server, account: PortalAccount) -> None:
    response = add(server, account.user_token, account.user_id, ALT)
    assert response.status_code == 409 and "Retry-After" not in response.headers
    assert response.json()["error"]["code"] == "smtp_relay_not_configured"
    assert "--smtp-relay" in response.json()["error"]["message"]
    assert addresses(server, account) == {account.user_email: True}


def test_a_bad_relay_url_is_a_usage_error(tmp_path: Path) -> None:
    server = Server(tmp_path, extra_args=("--smtp-relay", "http://relay.example"))
    with pytest.raises(RuntimeError, match="smtp-relay"):
        server.start()




def test_a_confirmed_address_is_judged_by_sender_authentication_like_the_primary(
        tmp_path: Path, dns_server: DnsServer) -> None:
    server = Server(tmp_path, extra_args=(
        "--dns-server", f"127.0.0.1:{dns_server.port}", "--dns-timeout", "0.25")).start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(email_validator, "TEST_ENVIRONMENT", True)
            account = server.new_portal("bob@example.test")
            token = request_confirmation(server, account.user_id, "bob@monitor.test")

        def send(source: str, message_id: str, *, sign: bool) -> tuple[int, str]:
            raw = (f"From: Bob <bob@monitor.test>\r\nTo: carl@customer.test\r\n"
                   f"Subject: Terms\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
                   f"Message-ID: <{message_id}@monitor.test>\r\n\r\nWe agree.\r\n"
                   ).encode()
            if sign:
                raw = bytes(dkim.sign(raw, b"s1", b"monitor.test", dns_server.key(
                    "monitor.test"), include_headers=[b"from", b"to", b"subject"])) + raw
            smtp = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30,
                                source_address=(source, 0))
            try:
                smtp.ehlo("mx.sender.test")
                return deliver(server, raw, account.bcc_address,
                               mail_from="bob@monitor.test", smtp=smtp)
            finally:
                smtp.quit()

        # Authenticated (SPF and DKIM pass from the domain's server), yet not Bob's yet.
        code, text = send("127.0.0.6", "before", sign=True)
        assert code == 550 and text.startswith("5.7.1") and "not a user" in text, text
        confirmed = confirm(server, f"/confirm-address?token={token}")
        assert confirmed.status_code == 200
        logged_id(send("127.0.0.6", "after", sign=True))
        # From anyone else, Bob's confirmed address fails its domain's DMARC as his
        # primary one would (p=none: still refused for a portal user).
        code, text = send("127.0.0.5", "forged", sign=False)
        assert (code, text.split(" (")[0]) == (
            550, "5.7.1 DMARC check failed for monitor.test"), text
    finally:
        server.stop()
