"""Admission's decisions as pure functions: which message is logged, why one is refused,
which threads it joins or merges, and the sync pre-filter. No database: the look-ups
``admit`` makes are given as plain values."""

from __future__ import annotations

import asyncio

import pytest

from core.admission import (
    AUTOMATIC_PER_THREAD_PER_DAY,
    LoggedEmail,
    auto_reply_refusal,
    choose,
    nearest_threads,
    refusal,
    same_conversation,
)
from core.mail.parsing import ParsedMessage, parse_message
from core.mail.threads import ThreadKey
from core.preparation import Candidate, Display, prepare
from core.routing import Privacy, Route
from core.storage.models import User
from core.types import Direction, MessageId, NotLoggedReason, Refusal, Source, ThreadReason
from tests.support.mail import message

USER = "rep@ourco.example"
CONTACT = "carl@customer.example"
REP = User(id=7, portal_id=1, email=USER, name="Rita Rep")
USERS = {USER: REP}
PEOPLE = {CONTACT: "Carl"}


def _route(source: Source, direction: Direction = Direction.OUTGOING,
           privacy: Privacy = Privacy.NONE) -> Route:
    return Route(REP, source, direction, privacy)


def _forward(sender: str = CONTACT) -> bytes:
    original = message(sender=f"Carl <{sender}>", to=USER, subject="Prices",
                       message_id="<orig@customer.example>", body="Our prices are up.")
    fwd = message(sender=USER, to="abc@bcc.test", subject="Fwd: Prices",
                  message_id="<fwd@ourco.example>", body="FYI")
    fwd.add_attachment(original)
    return fwd.as_bytes()


def test_a_forward_by_hand_logs_its_original_as_a_forward() -> None:
    """A user's forward to the logging address: the original is chosen, incoming from
    its sender, source ``forward``, with its own id, display and no synthetic flag."""
    prepared = asyncio.run(prepare(_forward()))
    assert prepared.original is not None
    choice = choose(_route(Source.BCC), prepared.message, prepared.original, None, USERS)
    assert choice.chosen is prepared.original
    assert choice.chosen.message_id == "orig@customer.example"
    assert not choice.chosen.synthetic_id and "prices are up" in choice.chosen.parsed.text
    assert (choice.route.source, choice.route.direction, choice.route.user) == (
        Source.FORWARD, Direction.INCOMING, REP)
    assert choice.outer_keys == () and choice.forward_unread is None


def test_a_users_own_forwarded_mail_stays_outgoing() -> None:
    """Forwarding one's own sent email: the original is the user's, outgoing."""
    prepared = asyncio.run(prepare(_forward(sender=USER)))
    choice = choose(_route(Source.BCC), prepared.message, prepared.original, None, USERS)
    assert (choice.route.source, choice.route.direction) == (Source.FORWARD,
                                                             Direction.OUTGOING)


def test_an_inbox_rules_forward_keeps_the_outer_references() -> None:
    """An Exchange rule's FW: from the user (rule mail) logs the original, and keeps the
    outer message's thread keys to look up, as an inline original lost its own."""
    outer = parse_message(message(sender=USER, to="abc@bcc.test", subject="FW: Prices",
                                  in_reply_to="<root@ourco.example>").as_bytes())
    inner = parse_message(message(sender=CONTACT, to=USER).as_bytes())
    original = Candidate(inner, MessageId("orig@x"), False, Display("", ""))
    rule = _route(Source.RULE, Direction.OUTGOING, Privacy.THREAD)
    choice = choose(rule, Candidate.of_headers(outer), original, None, USERS)
    assert choice.chosen is original and choice.route.source is Source.RULE
    assert choice.route.privacy is Privacy.THREAD and choice.route.direction is (
        Direction.INCOMING)
    assert ThreadKey(MessageId("root@ourco.example"), ThreadReason.IN_REPLY_TO) in (
        choice.outer_keys)


@pytest.mark.parametrize(("source", "noted"), [(Source.BCC, True), (Source.RULE, False),
                                               (Source.SYNC, False)])
def test_an_unreadable_forward_is_noted_only_for_a_users_own_mail(
        source: Source, noted: bool) -> None:
    """A forward nobody could read is logged as the message itself; only when the user
    sent it to the logging address (BCC) does that leave a note saying why."""
    outer = Candidate.of_headers(parse_message(message(sender=USER, to=CONTACT).as_bytes()))
    choice = choose(_route(source), outer, None, "no original found", USERS)
    assert choice.chosen is outer and choice.route.source is source
    assert choice.forward_unread == ("no original found" if noted else None)


def test_the_never_log_list_comes_first() -> None:
    """Every address on the never-log list (and no other contact): not logged, even by
    a user's own hand and in a thread."""
    assert refusal(Privacy.NONE, in_thread=True, people={}, blocked=True, automatic=None,
                   known_contact=False) == Refusal(NotLoggedReason.NEVER_LOG,
                                                   "on the never-log list")
    assert refusal(Privacy.NONE, in_thread=False, people=PEOPLE, blocked=True,
                   automatic=None, known_contact=False) is None


def test_explicit_logging_has_no_privacy_rule() -> None:
    """What a user logged by hand is logged outside any thread, bulk or not (the
    caller gives ``automatic`` only for automatic sources)."""
    assert refusal(Privacy.NONE, in_thread=False, people=PEOPLE, blocked=False,
                   automatic=None, known_contact=False) is None


@pytest.mark.parametrize("privacy", [Privacy.THREAD, Privacy.THREAD_OR_CONTACT])
def test_automatic_mail_outside_a_thread_is_refused_as_bulk(privacy: Privacy) -> None:
    """A newsletter that rule or sync brings, outside a thread: bulk, even from a
    known contact; inside a thread it is logged."""
    refused = refusal(privacy, in_thread=False, people=PEOPLE, blocked=False,
                      automatic="List-Unsubscribe", known_contact=True)
    assert refused == Refusal(NotLoggedReason.BULK,
                              "automatic mail (List-Unsubscribe) outside a logged thread")
    assert refusal(privacy, in_thread=True, people=PEOPLE, blocked=False,
                   automatic="List-Unsubscribe", known_contact=False) is None


def test_replies_only_wants_a_thread() -> None:
    """Under "replies" (Privacy.THREAD) a known contact is not enough."""
    assert refusal(Privacy.THREAD, in_thread=False, people=PEOPLE, blocked=False,
                   automatic=None, known_contact=True) == Refusal(
        NotLoggedReason.NOT_IN_THREAD, "not part of a logged thread")
    assert refusal(Privacy.THREAD, in_thread=True, people=PEOPLE, blocked=False,
                   automatic=None, known_contact=False) is None


def test_known_contacts_mode_takes_a_known_contact_instead() -> None:
    """Under "known_contacts" mail involving a contact is logged outside a thread."""
    assert refusal(Privacy.THREAD_OR_CONTACT, in_thread=False, people=PEOPLE,
                   blocked=False, automatic=None, known_contact=True) is None
    assert refusal(Privacy.THREAD_OR_CONTACT, in_thread=False, people=PEOPLE,
                   blocked=False, automatic=None, known_contact=False) == Refusal(
        NotLoggedReason.NOT_IN_THREAD, "not part of a logged thread and no known contact")


def test_an_auto_responder_loop_is_cut_after_the_days_allowance() -> None:
    """Automatic mail in a thread: the first few a day from one sender are logged."""
    assert auto_reply_refusal(AUTOMATIC_PER_THREAD_PER_DAY - 1) is None
    refused = auto_reply_refusal(AUTOMATIC_PER_THREAD_PER_DAY)
    assert refused is not None and refused.code is NotLoggedReason.BULK
    assert str(AUTOMATIC_PER_THREAD_PER_DAY) in refused.reason


def test_the_nearest_relatives_thread_comes_first_each_once() -> None:
    """Keys are looked up in order (parent first); a thread claimed twice counts once,
    with the reason of its nearest key."""
    keys = [ThreadKey(MessageId(m), r) for m, r in [
        ("parent@x", ThreadReason.IN_REPLY_TO), ("grand@x", ThreadReason.REFERENCES),
        ("other@x", ThreadReason.REFERENCES), ("unknown@x", ThreadReason.REFERENCES)]]
    claimed = {"grand@x": 5, "parent@x": 9, "other@x": 5}
    assert [(m.thread_id, m.reason) for m in nearest_threads(keys, claimed)] == [
        (9, ThreadReason.IN_REPLY_TO), (5, ThreadReason.REFERENCES)]
    assert nearest_threads(keys, {}) == []


def _email(thread_id: int, *addresses: str, moved: bool = False) -> LoggedEmail:
    return LoggedEmail(thread_id, addresses, moved)


def test_threads_sharing_a_participant_merge_transitively() -> None:
    """A reply referencing three threads merges those that share someone who is not a
    user or a logging address, directly or through another merged thread."""
    emails = [_email(1, USER, CONTACT), _email(2, CONTACT, "dee@customer.example"),
              _email(3, "dee@customer.example"), _email(4, USER, "abc@bcc.test"),
              _email(5, "zed@elsewhere.example")]
    assert same_conversation(1, [2, 3, 4, 5], emails, USERS, "bcc.test") == [2, 3]


def test_a_thread_moved_by_hand_is_never_merged() -> None:
    """A user's correction stands: a thread holding a hand-moved email stays apart, and
    one nearest the reply merges nothing."""
    emails = [_email(1, CONTACT), _email(2, CONTACT, moved=True), _email(3, CONTACT)]
    assert same_conversation(1, [2, 3], emails, USERS, "bcc.test") == [3]
    assert same_conversation(2, [1, 3], emails, USERS, "bcc.test") == []


def test_users_alone_do_not_make_one_conversation() -> None:
    """Two threads whose only common participant is a user (a re-used old email to new
    people) stay apart."""
    emails = [_email(1, USER, CONTACT), _email(2, USER.upper(), "new@other.example")]
    assert same_conversation(1, [2], emails, USERS, "bcc.test") == []


def test_a_header_only_candidate_makes_no_id_up() -> None:
    """Deciding from headers alone keeps the message's own id, or none: a made-up id
    would be one the stored email never gets."""
    with_id: ParsedMessage = parse_message(
        message(sender=CONTACT, to=USER, message_id="<h@x>").as_bytes())
    without = parse_message(message(sender=CONTACT, to=USER).as_bytes())
    assert Candidate.of_headers(with_id).message_id == "h@x"
    assert Candidate.of_headers(without).message_id is None
    assert not Candidate.of_headers(without).synthetic_id
