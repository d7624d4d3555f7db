"""The sync pre-filter's decisions as pure functions: what a header block says, and
whether the message could tie to a logged thread."""

from __future__ import annotations

from core.storage.models import User
from core.sync_filter import HeaderGlance, may_tie

USER = "rep@ourco.example"
CONTACT = "carl@customer.example"
USERS = {USER: User(id=7, portal_id=1, email=USER, name="Rita Rep")}


def _glance(**headers: str) -> HeaderGlance:
    block = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
    return HeaderGlance.of(block.encode() + b"\r\n")


def test_the_glance_reads_sender_ids_and_a_bare_thread_index() -> None:
    """From (lower-case), every id of Message-ID, In-Reply-To and References, and
    whether Thread-Index stands without reference headers."""
    seen = _glance(From="Carl <Carl@Customer.example>", Message_ID="<a@x>",
                   In_Reply_To="<b@x>", References="<c@x> <b@x>")
    assert seen == HeaderGlance(CONTACT, frozenset({"a@x", "b@x", "c@x"}), False)
    assert _glance(From=CONTACT, Thread_Index="AQHZ").thread_index_only
    assert not _glance(From=CONTACT, Thread_Index="AQHZ", References="<c@x>").thread_index_only


def test_the_prefilter_keeps_what_could_tie_to_a_thread() -> None:
    """Under replies only, a body is worth fetching for a user's own mail, a bare
    Thread-Index, or an id logged or claimed by a thread; not for anything else."""
    known = {"root@ourco.example"}
    assert may_tie(_glance(From=USER, Message_ID="<new@x>"), USERS, known)
    assert may_tie(_glance(From=CONTACT, Thread_Index="AQHZ"), USERS, known)
    assert may_tie(_glance(From=CONTACT, In_Reply_To="<root@ourco.example>"), USERS, known)
    assert not may_tie(_glance(From=CONTACT, Message_ID="<new@x>"), USERS, known)
    assert not may_tie(_glance(From=CONTACT), frozenset({USER}), set())
