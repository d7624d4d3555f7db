"""Threading keys and thread subjects as pure functions over parsed messages (no
database, no server): core.mail.threads and the prefix table it shares with forwards."""

from __future__ import annotations

import base64

import pytest

from core.mail.forwards import is_forward_subject, strip_forward_prefixes
from core.mail.parsing import ParsedMessage, parse_message
from core.mail.subjects import FORWARD_PREFIXES, REPLY_PREFIXES
from core.mail.threads import (
    THREAD_INDEX_PREFIX,
    ThreadKey,
    base_subject,
    claimed_ids,
    reference_ids,
    thread_index_key,
    thread_keys,
)
from core.types import MessageId, ThreadReason

# An Outlook Thread-Index: a FILETIME (6 bytes kept) and a GUID (16 bytes) start the
# conversation; every reply appends 5 bytes.
_CONVERSATION = bytes(range(1, 23))
_START = base64.b64encode(_CONVERSATION).decode()
_REPLY = base64.b64encode(_CONVERSATION + b"\x00\x01\x02\x03\x04").decode()


def _message(*headers: str) -> ParsedMessage:
    head = ["From: Ann <ann@acme.example>", "To: Bob <bob@beta.example>", *headers]
    return parse_message(("\r\n".join(head) + "\r\n\r\nHello\r\n").encode())


def test_keys_run_from_the_parent_back_to_the_root_then_the_message_itself() -> None:
    """In-Reply-To first, References newest to oldest (JWZ), then the own Message-ID."""
    parsed = _message("Message-ID: <m4@acme.example>", "In-Reply-To: <m3@beta.example>",
                      "References: <m1@acme.example> <m2@beta.example> <m3@beta.example>")
    assert thread_keys(parsed) == [
        ThreadKey(MessageId("m3@beta.example"), ThreadReason.IN_REPLY_TO),
        ThreadKey(MessageId("m2@beta.example"), ThreadReason.REFERENCES),
        ThreadKey(MessageId("m1@acme.example"), ThreadReason.REFERENCES),
        ThreadKey(MessageId("m4@acme.example"), ThreadReason.REFERENCES),
    ]


def test_a_message_without_references_is_keyed_by_its_own_id() -> None:
    """A first message can still land on the thread its earlier-logged replies made."""
    parsed = _message("Message-ID: <m1@acme.example>")
    assert thread_keys(parsed) == [
        ThreadKey(MessageId("m1@acme.example"), ThreadReason.REFERENCES)]


def test_a_message_with_no_ids_at_all_has_no_keys() -> None:
    """Nothing to look a thread up by: the caller starts a new thread."""
    assert thread_keys(_message()) == []


def test_an_address_in_in_reply_to_is_not_taken_for_a_message_id() -> None:
    """Some clients put the parent's address there; as an id it would merge strangers."""
    parsed = _message("Message-ID: <m2@acme.example>",
                      "In-Reply-To: <bob@beta.example>",
                      "References: <ANN@acme.example> <m1@beta.example>")
    in_reply_to, references = reference_ids(parsed)
    assert in_reply_to == []
    assert references == ["m1@beta.example"]


def test_an_overlong_reference_is_dropped() -> None:
    """An id past RFC 5322's line length limit cannot name a real message."""
    long_id = "x" * 990 + "@acme.example"
    parsed = _message(f"References: <{long_id}> <m1@acme.example>")
    assert reference_ids(parsed) == ([], ["m1@acme.example"])


def test_thread_index_names_the_conversation_by_its_first_22_bytes() -> None:
    """A reply's longer Thread-Index gives the key of the message that started it."""
    key = thread_index_key(_START)
    assert key == THREAD_INDEX_PREFIX + _CONVERSATION[6:22].hex()
    assert thread_index_key(_REPLY) == key
    assert thread_index_key(_START.rstrip("=")) == key  # padding dropped by some clients


@pytest.mark.parametrize("value", [None, "", "AQID", "not base64 at all!"])
def test_a_short_or_broken_thread_index_names_nothing(value: str | None) -> None:
    """Under 22 bytes there is no conversation id to read, and nothing raises."""
    assert thread_index_key(value) is None


def test_thread_index_is_a_fallback_only() -> None:
    """It keys a message without In-Reply-To and References, and never outranks them."""
    alone = _message("Message-ID: <m2@acme.example>", f"Thread-Index: {_REPLY}")
    assert [k.reason for k in thread_keys(alone)] == [
        ThreadReason.REFERENCES, ThreadReason.THREAD_INDEX]
    replying = _message("Message-ID: <m2@acme.example>", "In-Reply-To: <m1@beta.example>",
                        f"Thread-Index: {_REPLY}")
    assert ThreadReason.THREAD_INDEX not in [k.reason for k in thread_keys(replying)]


def test_a_joining_message_claims_its_id_its_references_and_its_conversation() -> None:
    """Later messages find the thread by any id one of its messages carried."""
    parsed = _message("Message-ID: <m3@acme.example>", "In-Reply-To: <m2@beta.example>",
                      "References: <m1@acme.example>", f"Thread-Index: {_REPLY}")
    assert claimed_ids(parsed, MessageId("m3@acme.example")) == [
        "m3@acme.example", "m2@beta.example", "m1@acme.example", thread_index_key(_START)]


@pytest.mark.parametrize(("subject", "expected"), [
    ("Отв: Цена", "Цена"),  # forward recovery stripped it; thread names kept it before
    ("RE: AW: Angebot", "Angebot"),
    ("Re: Fwd: RE: Pricing", "Pricing"),
    ("SV: Tilbud", "Tilbud"),
    ("Odp: Zapytanie", "Zapytanie"),
    ("VÁ: Árajánlat", "Árajánlat"),
    ("YNT: Teklif", "Teklif"),
    ("İLT: Teklif", "Teklif"),
    ("Fwd[2]: Pricing", "Pricing"),
    ("Re(2): Pricing", "Pricing"),
    ("RE^2: Pricing", "Pricing"),
    ("回复：报价", "回复：报价"),  # not in the table: kept as it is
    ("  Re :  Pricing  ", "Pricing"),
    ("Re:", ""),
    ("Rebecca: a note", "Rebecca: a note"),
    ("Information: x", "Information: x"),
    ("Pricing (Re: yours)", "Pricing (Re: yours)"),
])
def test_base_subject_drops_the_leading_reply_and_forward_prefixes(subject: str,
                                                                   expected: str) -> None:
    """A thread is named by its subject without the prefixes clients add."""
    assert base_subject(subject) == expected


@pytest.mark.parametrize("prefix", [word for word, _ in FORWARD_PREFIXES])
def test_every_forward_prefix_of_the_table_is_read_alike_by_both_paths(prefix: str) -> None:
    """Threads and forward recovery share one table: a forward prefix goes in both."""
    subject = f"{prefix.upper()}: Pricing"
    assert base_subject(subject) == "Pricing"
    assert strip_forward_prefixes(subject) == "Pricing"
    assert is_forward_subject(subject)


@pytest.mark.parametrize("prefix", [word for word, _ in REPLY_PREFIXES])
def test_every_reply_prefix_of_the_table_names_a_thread_but_no_forward(prefix: str) -> None:
    """A reply prefix is stripped from a thread's name and is not a forward marker."""
    subject = f"{prefix.capitalize()}: Pricing"
    assert base_subject(subject) == "Pricing"
    assert strip_forward_prefixes(subject) == subject
    assert not is_forward_subject(subject)
