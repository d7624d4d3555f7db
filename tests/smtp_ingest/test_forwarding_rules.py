"""Forwarding rules through the SMTP port: each provider's shape, and real forwarders
(Postfix local(8) aliases, a virtual alias, postsrsd's SRS, Dovecot Pigeonhole's Sieve
``redirect``) relaying to inboxlog."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest

from tests.support.forwarders import (
    DOT_FORWARD_USER,
    POSTFIX_DOMAIN,
    SIEVE_DOMAIN,
    VIRTUAL_DOMAIN,
    Postfix,
    SieveRedirect,
)
from tests.support.forwarding_shapes import ALIASES, SHAPES, USER, stranger
from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server

NOT_IN_THREAD = (250, "2.0.0 not logged: not part of a logged thread")


@pytest.fixture(scope="module")
def rep(server: Server) -> PortalAccount:
    """One portal for the module; its user's mailboxes at every provider and forwarder."""
    return server.new_portal(USER, *ALIASES, f"rep@{VIRTUAL_DOMAIN}", f"rep@{SIEVE_DOMAIN}",
                             f"rep.sent-as@{SIEVE_DOMAIN}", f"{DOT_FORWARD_USER}@{POSTFIX_DOMAIN}")


def _logged_thread(server: Server, rep: PortalAccount, contact: str) -> tuple[str, int]:
    """A BCC'd email from the user to ``contact``: its Message-ID and thread id."""
    root_id = make_msgid(domain="ourco.example")
    email_id = logged_id(deliver(server, message(sender=USER, to=contact, message_id=root_id),
                                 rep.bcc_address))
    with server.api(rep.user_token) as api:
        return root_id, api.get(f"/api/v1/emails/{email_id}").json()["thread_id"]


def _reply(contact: str, root_id: str | None) -> EmailMessage:
    return message(sender=f"Carl <{contact}>", to=USER, subject="Re: Quarterly numbers",
                   message_id=make_msgid(domain="customer.example"), in_reply_to=root_id,
                   date="Tue, 17 Nov 2026 10:00:00 +0100")


def _by_message_id(server: Server, rep: PortalAccount, message_id: str) -> list[Any]:
    with server.api(rep.user_token) as api:
        items: list[Any] = api.get("/api/v1/emails",
                                   params={"message_id": message_id}).json()["items"]
        return items


def _wait_refusal(server: Server, rep: PortalAccount, message_id: str,
                  timeout: float = 20) -> dict[str, Any]:
    """The ingest-log entry of a message a forwarder relayed, once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with server.api(rep.admin_token) as api:
            for entry in api.get("/api/v1/ingest-log").json()["items"]:
                if entry["message_id"] == message_id.strip("<>"):
                    return entry  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"no ingest-log entry for {message_id} in {timeout}s")


@pytest.mark.parametrize("provider", sorted(SHAPES))
def test_provider_shape_through_smtp(server: Server, rep: PortalAccount, provider: str) -> None:
    """A contact's reply forwarded in the provider's shape is logged on its thread as
    rule mail; unrelated mail in that shape is not stored; the shape from a mailbox of
    no user is refused with 550 5.7.1 naming what was seen, in the SMTP reply and the
    ingest log."""
    shape, mailbox = SHAPES[provider]
    contact = f"carl-{provider.replace('_', '-')}@customer.example"
    root_id, thread_id = _logged_thread(server, rep, contact)

    reply = _reply(contact, root_id)
    shaped = shape(mailbox, rep.bcc_address, contact)
    email_id = logged_id(deliver(server, shaped.apply(reply), rep.bcc_address,
                                 mail_from=shaped.mail_from))
    with server.api(rep.user_token) as api:
        email = api.get(f"/api/v1/emails/{email_id}").json()
    assert (email["thread_id"], email["sources"], email["direction"], email["from"]["email"]) \
        == (thread_id, ["rule"], "incoming", contact)

    unrelated = _reply(contact, None)
    assert deliver(server, shaped.apply(unrelated), rep.bcc_address,
                   mail_from=shaped.mail_from) == NOT_IN_THREAD
    assert _by_message_id(server, rep, unrelated["Message-ID"]) == []

    other = stranger(mailbox)
    foreign = shape(other, rep.bcc_address, contact)
    refused = _reply(contact, root_id)
    code, text = deliver(server, foreign.apply(refused), rep.bcc_address,
                         mail_from=foreign.mail_from)
    assert code == 550 and text.startswith(
        f"5.7.1 {contact} is not a user of this account, nor is any forwarding mailbox the "
        "message names: "), text
    assert other in text, text
    assert _by_message_id(server, rep, refused["Message-ID"]) == []
    entry = _wait_refusal(server, rep, refused["Message-ID"])
    assert (entry["reason_code"], entry["reason"], entry["envelope_sender"]) == (
        "not_a_user", text.removeprefix("5.7.1 "), foreign.mail_from)


def test_srs_local_part_of_a_user_is_not_the_user(server: Server, rep: PortalAccount) -> None:
    """Microsoft 365's SRS sender holds the original sender's local part at the user's
    domain; mail from rep@customer.example SRS-rewritten so is not taken as the user's."""
    contact = "rep@customer.example"
    root_id, _ = _logged_thread(server, rep, contact)
    srs = "rep+SRS=Xk3qP=5Q=customer.example=rep@ourco.example"
    code, text = deliver(server, _reply(contact, root_id), rep.bcc_address, mail_from=srs)
    assert (code, text) == (550, f"5.7.1 {contact} is not a user of this account, nor is any "
                                 f"forwarding mailbox the message names: envelope sender {srs} "
                                 "(SRS by ourco.example for rep@customer.example)")


def test_exchange_inbox_rule_forward_is_held_to_the_privacy_rule(
    server: Server, rep: PortalAccount
) -> None:
    """An Exchange inbox rule's "Forward to" (a FW: from the user, stamped
    X-MS-Exchange-Inbox-Rules-Loop) is not stored outside a logged thread; the same
    forward written by the user is logged as the original."""
    contact = "carl-rule-fw@customer.example"
    forward = message(sender=USER, to=rep.bcc_address, subject="FW: Price list",
                      message_id=make_msgid(domain="ourco.example"), body=(
                          "\n________________________________\n"
                          f"From: Carl <{contact}>\n"
                          "Sent: Tuesday, November 17, 2026 10:00 AM\n"
                          f"To: Rita Rep <{USER}>\n"
                          "Subject: Price list\n\n"
                          "Hi Rita, the price list is attached.\n"))
    by_hand = logged_id(deliver(server, forward, rep.bcc_address, mail_from=USER))
    with server.api(rep.user_token) as api:
        email = api.get(f"/api/v1/emails/{by_hand}").json()
    assert (email["sources"], email["from"]["email"]) == (["forward"], contact)

    # The rule forwards another message of Carl's, tied to no logged thread.
    by_rule = message(sender=USER, to=rep.bcc_address, subject="FW: Price list",
                      message_id=make_msgid(domain="ourco.example"), body=(
                          "\n________________________________\n"
                          f"From: Carl <{contact}>\n"
                          "Sent: Wednesday, November 18, 2026 9:00 AM\n"
                          f"To: Rita Rep <{USER}>\n"
                          "Subject: Price list\n\n"
                          "Rita, one more price list.\n"))
    by_rule["X-MS-Exchange-Inbox-Rules-Loop"] = USER
    assert deliver(server, by_rule, rep.bcc_address, mail_from=USER) == NOT_IN_THREAD


def test_exchange_inbox_rule_forward_of_a_reply_logs_the_original_on_its_thread(
    server: Server, rep: PortalAccount
) -> None:
    """An Exchange inbox rule's FW: of a customer's reply to a logged email (the FW:
    references it) is logged as the customer's original, incoming, source rule, on that
    thread; the privacy rule still holds it to that thread."""
    contact = "carl-rule-reply@customer.example"
    root_id, thread_id = _logged_thread(server, rep, contact)
    forward = message(sender=USER, to=rep.bcc_address, subject="FW: Re: Quarterly numbers",
                      message_id=make_msgid(domain="ourco.example"), in_reply_to=root_id,
                      body=(
                          "\n________________________________\n"
                          f"From: Carl <{contact}>\n"
                          "Sent: Tuesday, November 17, 2026 10:00 AM\n"
                          f"To: Rita Rep <{USER}>\n"
                          "Subject: Re: Quarterly numbers\n\n"
                          "Rita, the numbers look right to us.\n"))
    forward["X-MS-Exchange-Inbox-Rules-Loop"] = USER
    email_id = logged_id(deliver(server, forward, rep.bcc_address, mail_from=USER))
    with server.api(rep.user_token) as api:
        email = api.get(f"/api/v1/emails/{email_id}").json()
    assert (email["thread_id"], email["sources"], email["direction"]) == (
        thread_id, ["rule"], "incoming")
    assert (email["from"]["email"], email["subject"]) == (contact, "Re: Quarterly numbers")
    assert "numbers look right" in email["text"]


# Real forwarders ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def postfix(server: Server, rep: PortalAccount) -> Iterator[Postfix]:
    """Debian's Postfix forwarding the user's mailboxes to the logging address: the alias
    ``rep`` (local(8)), the .forward of the Unix account nobody (local(8); one of the
    user's addresses), ``rep@virt…`` (virtual_alias_maps), and the alias ``stranger``, who
    is no user."""
    running = Postfix(server.smtp_port,
                      aliases={"rep": rep.bcc_address, "stranger": rep.bcc_address},
                      virtual={"rep": rep.bcc_address}, dot_forward=rep.bcc_address).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sieve(server: Server, rep: PortalAccount) -> Iterator[SieveRedirect]:
    """Dovecot LMTP with Pigeonhole: ``rep``, ``rep.sent-as`` (whose redirects are sent as
    the user: ``sieve_redirect_envelope_from = recipient``) and ``stranger`` redirect to
    the logging address."""
    targets = dict.fromkeys(("rep", "rep.sent-as", "stranger"), rep.bcc_address)
    running = SieveRedirect(server.smtp_port, targets,
                            envelope_from={"rep.sent-as": "recipient"}).start()
    yield running
    running.stop()


def _wait_logged(server: Server, rep: PortalAccount, message_id: str,
                 timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _by_message_id(server, rep, message_id)
        if found:
            return found[0]  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"{message_id} was not logged in {timeout}s")


@pytest.mark.parametrize("where", ["alias", "dot_forward", "virtual", "postsrsd"])
def test_postfix_forwarding(server: Server, rep: PortalAccount, postfix: Postfix,
                            where: str) -> None:
    """Postfix forwards the contact's reply (envelope sender kept, or SRS-rewritten by
    postsrsd): inboxlog logs it on the thread as rule mail and answers Postfix
    ``logged``; an unrelated message gets ``not logged``."""
    contact = f"carl-postfix-{where.replace('_', '-')}@customer.example"
    root_id, thread_id = _logged_thread(server, rep, contact)
    mailbox = {"virtual": f"rep@{VIRTUAL_DOMAIN}",
               "dot_forward": f"{DOT_FORWARD_USER}@{POSTFIX_DOMAIN}"}.get(
                   where, f"rep@{POSTFIX_DOMAIN}")
    srs = where == "postsrsd"

    reply = _reply(contact, root_id)
    queued = postfix.send(reply.as_bytes(), contact, mailbox, srs=srs)
    email = _wait_logged(server, rep, reply["Message-ID"])
    assert (email["thread_id"], email["sources"], email["direction"]) == (
        thread_id, ["rule"], "incoming")
    line = postfix.relay_reply(queued)
    assert f"status=sent (250 2.0.0 logged {email['id']})" in line, line
    assert f"orig_to=<{mailbox}>" in line, line

    unrelated = _reply(contact, None)
    line = postfix.relay_reply(postfix.send(unrelated.as_bytes(), contact, mailbox, srs=srs))
    assert "status=sent (250 2.0.0 not logged: not part of a logged thread)" in line, line
    assert _wait_refusal(server, rep, unrelated["Message-ID"])["reason_code"] == "not_in_thread"
    assert _by_message_id(server, rep, unrelated["Message-ID"]) == []


def test_postfix_forwarding_of_no_user_is_refused(server: Server, rep: PortalAccount,
                                                  postfix: Postfix) -> None:
    """Postfix forwarding the alias of someone who is no user: inboxlog's 550 names the
    Delivered-To local(8) wrote, and Postfix reports it (a null sender: no bounce)."""
    contact = "carl-postfix-stranger@customer.example"
    root_id, _ = _logged_thread(server, rep, contact)
    reply = _reply(contact, root_id)
    line = postfix.relay_reply(postfix.send(reply.as_bytes(), "",
                                            f"stranger@{POSTFIX_DOMAIN}"))
    assert "status=bounced" in line and "said: 550 5.7.1" in line, line
    assert f"Delivered-To stranger@{POSTFIX_DOMAIN}" in line, line
    entry = _wait_refusal(server, rep, reply["Message-ID"])
    assert entry["reason_code"] == "not_a_user"
    assert f"Delivered-To stranger@{POSTFIX_DOMAIN}" in entry["reason"]


def test_sieve_redirect_sent_as_the_user(server: Server, rep: PortalAccount,
                                         sieve: SieveRedirect) -> None:
    """A Pigeonhole redirect sent with the user as envelope sender is logged on the thread
    as rule mail; an unrelated one is not stored."""
    contact = "carl-sieve-sent-as@customer.example"
    root_id, thread_id = _logged_thread(server, rep, contact)
    reply = _reply(contact, root_id)
    assert sieve.deliver(reply.as_bytes(), contact, "rep.sent-as").startswith("250 ")
    email = _wait_logged(server, rep, reply["Message-ID"])
    assert (email["thread_id"], email["sources"]) == (thread_id, ["rule"])
    unrelated = _reply(contact, None)
    assert sieve.deliver(unrelated.as_bytes(), contact, "rep.sent-as").startswith("250 ")
    assert _wait_refusal(server, rep, unrelated["Message-ID"])["envelope_sender"] == \
        f"rep.sent-as@{SIEVE_DOMAIN}"
    assert _by_message_id(server, rep, unrelated["Message-ID"]) == []


def test_sieve_redirect(server: Server, rep: PortalAccount, sieve: SieveRedirect) -> None:
    """Pigeonhole's ``redirect`` (envelope sender kept) of the contact's reply is logged
    on the thread as rule mail; an unrelated message is not stored; a redirect from a
    mailbox of no user is refused, naming X-Sieve-Redirected-From."""
    contact = "carl-sieve@customer.example"
    root_id, thread_id = _logged_thread(server, rep, contact)
    reply = _reply(contact, root_id)
    assert sieve.deliver(reply.as_bytes(), contact, "rep").startswith("250 ")
    email = _wait_logged(server, rep, reply["Message-ID"])
    assert (email["thread_id"], email["sources"], email["direction"]) == (
        thread_id, ["rule"], "incoming")

    unrelated = _reply(contact, None)
    assert sieve.deliver(unrelated.as_bytes(), contact, "rep").startswith("250 ")
    assert _wait_refusal(server, rep, unrelated["Message-ID"])["reason"] == \
        "not part of a logged thread"
    assert _by_message_id(server, rep, unrelated["Message-ID"]) == []

    refused = _reply(contact, root_id)
    # Pigeonhole keeps a message it could not redirect: LMTP still answers 250.
    assert sieve.deliver(refused.as_bytes(), contact, "stranger").startswith("250 ")
    entry = _wait_refusal(server, rep, refused["Message-ID"])
    assert entry["reason_code"] == "not_a_user"
    assert entry["reason"] == (
        f"{contact} is not a user of this account, nor is any forwarding mailbox the message "
        f"names: envelope sender {contact}; X-Sieve-Redirected-From stranger@{SIEVE_DOMAIN}")
    said = sieve.wait_for_log(refused["Message-ID"])
    assert f"failed to redirect message to <{rep.bcc_address}>" in said, said
    assert f"550 5.7.1 {entry['reason']} (permanent failure)" in said, said
