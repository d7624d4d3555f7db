"""Routing forwarding-rule mail: the forwarding user from each provider's shape, and
precise refusals when the message names none."""

from __future__ import annotations

import time

import pytest

from core.errors import SenderNotAllowed
from core.mail import forwarding_rules as forwarding
from core.mail.parsing import ADDRESS, ParsedMessage, parse_message
from core.routing import Privacy, contact_candidates, never_logged, route, sync_privacy
from core.storage.models import User
from core.types import Direction, Envelope, InboxLogMode, Source
from tests.support.forwarding_shapes import ALIASES, SHAPES, USER, stranger
from tests.support.mail import message

LOGGING = "tok123@bcc.test"
CONTACT = "carl@customer.example"
REP = User(id=7, portal_id=1, email=USER, name="Rita Rep")
OTHER = User(id=8, portal_id=1, email="other@ourco.example", name="Otto")
USERS = {a: REP for a in (USER, *ALIASES)} | {OTHER.email: OTHER}


def _reply() -> object:
    return message(sender=f"Carl <{CONTACT}>", to=USER, subject="Re: Quarterly numbers",
                   message_id="<r1@customer.example>", in_reply_to="<root@ourco.example>")


def _route(provider: str, mailbox: str | None = None):  # type: ignore[no-untyped-def]
    shape, own = SHAPES[provider]
    shaped = shape(mailbox or own, LOGGING, CONTACT)
    parsed = parse_message(shaped.apply(_reply()))  # type: ignore[arg-type]
    envelope = Envelope(mail_from=shaped.mail_from, rcpt_tos=(LOGGING,),
                        logging_address=LOGGING)
    return route(parsed, envelope, USERS), parsed, envelope


@pytest.mark.parametrize("provider", sorted(SHAPES))
def test_each_provider_names_the_forwarding_user(provider: str) -> None:
    """Every provider's forwarding shape routes to the user as rule mail, incoming,
    under the privacy rule: never more than a forwarding rule gets."""
    how, _, _ = _route(provider)
    assert (how.user, how.source, how.direction, how.privacy) == (
        REP, Source.RULE, Direction.INCOMING, Privacy.THREAD)


@pytest.mark.parametrize("provider", sorted(SHAPES))
def test_each_provider_naming_no_user_is_refused_precisely(provider: str) -> None:
    """The same shape from a mailbox that is not a user's is refused, and the refusal
    names the forwarding mailbox seen and where it was seen."""
    mailbox = stranger(SHAPES[provider][1])
    with pytest.raises(SenderNotAllowed) as refused:
        _route(provider, mailbox)
    text = refused.value.message
    assert text.startswith(f"{CONTACT} is not a user of this account, nor is any "
                           "forwarding mailbox the message names: "), text
    assert mailbox in text, text
    assert LOGGING not in text.split(": ", 1)[1].replace(" to this address", ""), text
    assert len(text) <= 390


def test_gmail_refusal_reads_the_caf_envelope() -> None:
    """Gmail's +caf_ envelope sender is described as a forward to this address."""
    with pytest.raises(SenderNotAllowed) as refused:
        _route("gmail", "someone.else@gmail.com")
    assert refused.value.message == (
        f"{CONTACT} is not a user of this account, nor is any forwarding mailbox the "
        "message names: envelope sender someone.else+caf_=tok123=bcc.test@gmail.com "
        "(Gmail forwarding to this address); X-Forwarded-For someone.else@gmail.com")


def test_srs_sender_is_reported_never_matched() -> None:
    """Microsoft 365's SRS address carries the original sender's local part at the
    user's domain: a user who shares that local part is not named by it."""
    contact = "rep@customer.example"  # the same local part as the user rep@ourco.example
    parsed = parse_message(message(sender=contact, to=USER, message_id="<x@c>").as_bytes())
    srs = "rep+SRS=Xk3qP=5Q=customer.example=rep@ourco.example"
    with pytest.raises(SenderNotAllowed) as refused:
        route(parsed, Envelope(mail_from=srs, logging_address=LOGGING), USERS)
    assert refused.value.message == (
        f"{contact} is not a user of this account, nor is any forwarding mailbox the message "
        f"names: envelope sender {srs} (SRS by ourco.example for rep@customer.example)")
    postsrsd = "SRS0=HT6j=JU=customer.example=rep@ourco.example"
    with pytest.raises(SenderNotAllowed):
        route(parsed, Envelope(mail_from=postsrsd, logging_address=LOGGING), USERS)


def test_nothing_named_says_so() -> None:
    """No envelope sender and no forwarding header: the refusal says nothing names one."""
    parsed = parse_message(message(sender="mallory@evil.example", to=USER).as_bytes())
    with pytest.raises(SenderNotAllowed) as refused:
        route(parsed, Envelope(mail_from="", logging_address=LOGGING), USERS)
    assert refused.value.message == (
        "mallory@evil.example is not a user of this account, and no envelope sender or "
        "forwarding header names another mailbox")


def test_many_candidates_are_cut_to_one_reply_line() -> None:
    """Hundreds of forged Delivered-To lines: the refusal stays one short line."""
    msg = message(sender="mallory@evil.example", to=USER)
    top = "".join(f"Delivered-To: n{n}@evil.example\r\n" for n in range(300)).encode()
    parsed = parse_message(top + msg.as_bytes())
    with pytest.raises(SenderNotAllowed) as refused:
        route(parsed, Envelope(mail_from="mallory@evil.example", logging_address=LOGGING),
              USERS)
    text = refused.value.message
    assert len(text) <= 390 and text.endswith(" more"), text
    assert len(forwarding.claims(parsed, Envelope(mail_from="x@y.example"))) == \
        forwarding.MAX_CLAIMS


def test_headers_claiming_a_user_give_no_more_than_a_rule() -> None:
    """A forged Resent-From or X-Forwarded-For naming a user leaves From's stranger
    incoming rule mail under the privacy rule: not the user's own, not outgoing."""
    msg = message(sender="mallory@evil.example", to="victim@customer.example")
    msg["Resent-From"] = USER
    msg["X-Forwarded-For"] = f"{USER} {LOGGING}"
    how = route(parse_message(msg.as_bytes()), Envelope(mail_from=USER), USERS)
    assert (how.source, how.direction, how.privacy) == (
        Source.RULE, Direction.INCOMING, Privacy.THREAD)


def test_exchange_inbox_rule_forward_is_rule_mail() -> None:
    """A FW: from the user stamped by an Exchange inbox rule is rule mail under the privacy
    rule; the same forward without the stamp is the user's own (BCC, then forward)."""
    msg = message(sender=USER, to=LOGGING, subject="FW: Quarterly numbers",
                  body="From: Carl <carl@customer.example>\nSubject: Quarterly numbers\n\nHi")
    own = route(parse_message(msg.as_bytes()), Envelope(mail_from=USER), USERS)
    assert (own.source, own.privacy) == (Source.BCC, Privacy.NONE)
    msg["X-MS-Exchange-Inbox-Rules-Loop"] = USER
    ruled = route(parse_message(msg.as_bytes()), Envelope(mail_from=USER), USERS)
    assert (ruled.user, ruled.source, ruled.privacy) == (REP, Source.RULE, Privacy.THREAD)


def test_batv_signed_envelope_sender_is_the_user() -> None:
    """A BATV-signed envelope sender (prvs=tag=user@domain) names the user it signs."""
    parsed = parse_message(message(sender=CONTACT, to=USER).as_bytes())
    how = route(parsed, Envelope(mail_from="prvs=0123abcd=Rep@ourco.example"), USERS)
    assert how.user is REP and how.source is Source.RULE


def test_envelope_sender_wins_over_headers() -> None:
    """Two users named: the envelope sender (the forwarder's MTA) comes before headers."""
    msg = message(sender=CONTACT, to=USER)
    msg["Delivered-To"] = OTHER.email
    how = route(parse_message(msg.as_bytes()), Envelope(mail_from=USER), USERS)
    assert how.user is REP
    how = route(parse_message(msg.as_bytes()), Envelope(mail_from=CONTACT), USERS)
    assert how.user is OTHER


def test_only_the_topmost_received_counts() -> None:
    """A user's address in an older Received (an earlier hop of the original) is not a
    forwarder's word; the topmost one, written by the forwarder, is."""
    msg = message(sender=CONTACT, to=USER)
    old = (f"Received: from a (a [192.0.2.1]) by mx.customer.example with ESMTP id 1\r\n"
           f"\tfor <{USER}>; Tue, 17 Nov 2026 10:00:00 +0000\r\n").encode()
    top = (b"Received: from b (b [192.0.2.2]) by relay.customer.example with ESMTP id 2\r\n"
           b"\tfor <carl@customer.example>; Tue, 17 Nov 2026 10:00:01 +0000\r\n")
    with pytest.raises(SenderNotAllowed):
        route(parse_message(top + old + msg.as_bytes()), Envelope(mail_from=CONTACT), USERS)
    assert route(parse_message(old + msg.as_bytes()), Envelope(mail_from=CONTACT),
                 USERS).user is REP


def test_srs_readings() -> None:
    """SRS0, SRS1 and Microsoft's +SRS= read as (forwarder, original sender)."""
    cases = {
        "SRS0=HT6j=JU=customer.example=carl@ourco.example": ("ourco.example",
                                                             "carl@customer.example"),
        "SRS1=Zx1c=fwd.example==HT6j=JU=customer.example=carl@ourco.example": (
            "ourco.example", "carl@customer.example"),
        "bounces+SRS=Xk3qP=5Q=customer.example=carl@contoso.com": ("contoso.com",
                                                                    "carl@customer.example"),
    }
    for address, expected in cases.items():
        found = forwarding.srs(address)
        assert found is not None and (found.forwarder, found.original) == expected, address
    assert forwarding.srs("rep+caf_=tok=bcc.test@gmail.com") is None
    assert forwarding.srs("rep+srsly@ourco.example") is None


def test_a_huge_forwarding_header_is_read_in_linear_time() -> None:
    """A 60 KB run of address characters with no @ in a forwarding header (it used to
    take seconds of backtracking per header on the event loop) is refused at once."""
    msg = message(sender="mallory@evil.example", to=USER)
    for name in ("Delivered-To", "X-Forwarded-For", "X-Yahoo-Forwarded", "Received"):
        msg[name] = "for " + "a" * 60_000 + " ;"
    parsed = parse_message(msg.as_bytes())
    started = time.monotonic()
    with pytest.raises(SenderNotAllowed):
        route(parsed, Envelope(mail_from="x@y.example", logging_address=LOGGING), USERS)
    assert time.monotonic() - started < 1


def test_addresses_are_found_where_they_were() -> None:
    """The address pattern finds each address of a forwarding header, whatever stands
    around it (brackets, commas, semicolons, a run of other characters)."""
    value = ("rep@ourco.example other@ourco.example, <x.y+tag@sub.ourco.example>;"
             "rfc822;z@ourco.example user@contoso.com;1f2e-guid")
    assert ADDRESS.findall(value) == [
        "rep@ourco.example", "other@ourco.example", "x.y+tag@sub.ourco.example",
        "z@ourco.example", "user@contoso.com"]


# --- who, which way, under which privacy rule: the other entry points ------------------


def _parsed(sender: str, to: str = CONTACT) -> ParsedMessage:
    return parse_message(message(sender=sender, to=to, message_id="<m1@x.example>")
                         .as_bytes())


@pytest.mark.parametrize(("mode", "privacy"), [
    (InboxLogMode.REPLIES, Privacy.THREAD),
    (InboxLogMode.KNOWN_CONTACTS, Privacy.THREAD_OR_CONTACT),
])
def test_synced_mail_is_held_to_the_portals_inbox_log_mode(
        mode: InboxLogMode, privacy: Privacy) -> None:
    """Synced mail, sent or received, falls under the privacy rule its portal chose."""
    sync = Envelope(on_behalf_of=USER, source_hint=Source.SYNC)
    sent = route(_parsed(USER), sync, USERS, inbox_log_mode=mode)
    received = route(_parsed(CONTACT, USER), sync, USERS, inbox_log_mode=mode)
    assert (sent.source, sent.direction, sent.privacy) == (
        Source.SYNC, Direction.OUTGOING, privacy)
    assert (received.user, received.direction, received.privacy) == (
        REP, Direction.INCOMING, privacy)
    assert sync_privacy(mode) is privacy


@pytest.mark.parametrize("source", [Source.EXTENSION, Source.CRM_SEND])
def test_what_a_user_asked_to_log_has_no_privacy_rule(source: Source) -> None:
    """One-click logging and a CRM send are the user's own request: logged whatever
    thread they tie to, outgoing when From is a user, else incoming for the user."""
    envelope = Envelope(on_behalf_of=USER.upper(), source_hint=source)
    own = route(_parsed(OTHER.email), envelope, USERS)
    received = route(_parsed(CONTACT, USER), envelope, USERS)
    assert (own.user, own.source, own.direction, own.privacy) == (
        OTHER, source, Direction.OUTGOING, Privacy.NONE)
    assert (received.user, received.direction, received.privacy) == (
        REP, Direction.INCOMING, Privacy.NONE)


def test_on_behalf_of_someone_who_is_no_user_is_refused() -> None:
    """A token's user who is no user of the account (removed meanwhile) logs nothing."""
    with pytest.raises(SenderNotAllowed, match=r"^gone@ourco\.example is not a user"):
        route(_parsed(USER), Envelope(on_behalf_of="gone@ourco.example"), USERS)


def test_a_users_own_mail_at_the_logging_address_is_bcc() -> None:
    """From a user (any alias) at the logging address: their own mail, outgoing, BCC,
    with no privacy rule."""
    envelope = Envelope(rcpt_tos=(LOGGING,), logging_address=LOGGING)
    how = route(_parsed(ALIASES[0]), envelope, USERS)
    assert (how.user, how.source, how.direction, how.privacy) == (
        REP, Source.BCC, Direction.OUTGOING, Privacy.NONE)


def test_never_log_matches_the_address_its_domain_and_subdomains() -> None:
    """An entry names an address or a domain; a domain covers its subdomains too."""
    never = ["boss@ourco.example", "bank.example"]
    assert never_logged("boss@ourco.example", never)
    assert never_logged("x@bank.example", never) and never_logged("x@eu.bank.example", never)
    assert not never_logged("x@notbank.example", never)
    assert not never_logged("x@ourco.example", never) and not never_logged("x@y", [""])


def test_contact_candidates_leave_out_users_logging_addresses_and_never_log() -> None:
    """Outgoing: To and Cc; incoming: the sender first. Never a user, a logging address
    or a never-logged address; whether never-log removed one is said."""
    parsed = parse_message(message(
        sender=f"Carl <{CONTACT}>", to=[USER, LOGGING, "dee@customer.example"],
        cc=["boss@bank.example", "bad-address"]).as_bytes())
    incoming, removed = contact_candidates(parsed, Direction.INCOMING, USERS, "bcc.test",
                                           ["bank.example"])
    assert list(incoming) == [CONTACT, "dee@customer.example"] and removed
    outgoing, removed = contact_candidates(parsed, Direction.OUTGOING, USERS, "bcc.test", [])
    assert list(outgoing) == ["dee@customer.example", "boss@bank.example"] and not removed
    assert incoming[CONTACT] == "Carl"
