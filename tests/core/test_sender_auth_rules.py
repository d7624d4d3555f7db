"""Sender authentication rules without DNS: the policy decision table, DMARC record
parsing, alignment by organizational domain, header reading."""

from __future__ import annotations

import pytest

from core.sender_auth import (
    Action,
    Alignment,
    ArcCheck,
    ArcResult,
    AuthResult,
    AuthSource,
    Claim,
    Disposition,
    DmarcCheck,
    DmarcRecord,
    DmarcResult,
    FailedCheck,
    SenderAuthPolicy,
    SpfCheck,
    SpfResult,
    decide,
)
from core.sender_auth._headers import Headers, author_domain
from core.sender_auth._names import aligned, organizational_domain
from core.sender_auth.dmarc import parse_record

SPF_FAIL = SpfCheck(SpfResult.FAIL, "example.test")
REJECT = DmarcRecord("example.test", Disposition.REJECT)
NO_ARC = ArcCheck(ArcResult.NONE)


def result(dmarc: DmarcCheck, arc: ArcCheck = NO_ARC) -> AuthResult:
    return AuthResult(AuthSource.CHECKED, SPF_FAIL, (), dmarc, arc, dmarc.explanation)


PASS = result(DmarcCheck(DmarcResult.PASS, "example.test", REJECT, Disposition.REJECT,
                         aligned_spf=True))
FAIL_REJECT = result(DmarcCheck(DmarcResult.FAIL, "example.test", REJECT, Disposition.REJECT,
                                Disposition.REJECT, explanation="SPF fail; no DKIM signature"))
FAIL_QUARANTINE = result(DmarcCheck(
    DmarcResult.FAIL, "example.test", DmarcRecord("example.test", Disposition.QUARANTINE),
    Disposition.QUARANTINE, Disposition.QUARANTINE, explanation="SPF fail"))
FAIL_NONE = result(DmarcCheck(
    DmarcResult.FAIL, "example.test", DmarcRecord("example.test", Disposition.NONE),
    Disposition.NONE, Disposition.NONE, explanation="SPF fail"))
NO_RECORD_ALIGNED = result(DmarcCheck(DmarcResult.NONE, "example.test",
                                      aligned_dkim="example.test"))
NO_RECORD_UNALIGNED = result(DmarcCheck(DmarcResult.NONE, "example.test",
                                        explanation="SPF softfail; no DKIM signature"))
TEMPERROR = result(DmarcCheck(DmarcResult.TEMPERROR, "example.test",
                              explanation="DNS lookup of _dmarc.example.test TXT timed out"))
PERMERROR = result(DmarcCheck(DmarcResult.PERMERROR, None,
                              explanation="the message has 2 From header fields"))
VOUCHED = result(FAIL_REJECT.dmarc, ArcCheck(ArcResult.PASS, "forwarder.test", 1, vouched=True))
ARC_TEMPERROR = result(FAIL_REJECT.dmarc, ArcCheck(ArcResult.TEMPERROR,
                                                   explanation="DNS lookup timed out"))

E, M, OFF = SenderAuthPolicy.ENFORCE, SenderAuthPolicy.MONITOR, SenderAuthPolicy.OFF
USER, CONTACT = Claim.PORTAL_USER, Claim.CONTACT

# policy, claim, result -> the action and the SMTP answer's code and status (or None)
TABLE = [
    (E, USER, PASS, Action.ACCEPT, None),
    (E, USER, VOUCHED, Action.ACCEPT, None),
    (E, USER, NO_RECORD_ALIGNED, Action.ACCEPT, None),
    (E, USER, FAIL_REJECT, Action.REFUSE, "550 5.7.1"),
    (E, USER, FAIL_NONE, Action.REFUSE, "550 5.7.1"),  # a user's domain must pass, p= or not
    (E, USER, NO_RECORD_UNALIGNED, Action.REFUSE, "550 5.7.1"),
    (E, USER, PERMERROR, Action.REFUSE, "550 5.7.1"),
    (E, USER, TEMPERROR, Action.TEMPFAIL, "451 4.7.0"),
    (E, USER, ARC_TEMPERROR, Action.TEMPFAIL, "451 4.7.0"),
    (E, USER, None, Action.ACCEPT, None),  # not checked: trusted network
    (E, CONTACT, PASS, Action.ACCEPT, None),
    (E, CONTACT, FAIL_REJECT, Action.DETACH, None),
    (E, CONTACT, FAIL_QUARANTINE, Action.DETACH, None),
    (E, CONTACT, VOUCHED, Action.ACCEPT, None),
    (E, CONTACT, FAIL_NONE, Action.ACCEPT, None),
    (E, CONTACT, NO_RECORD_UNALIGNED, Action.ACCEPT, None),
    (E, CONTACT, PERMERROR, Action.ACCEPT, None),
    (E, CONTACT, TEMPERROR, Action.TEMPFAIL, "451 4.7.0"),
    (M, USER, FAIL_REJECT, Action.ACCEPT, None),
    (M, USER, TEMPERROR, Action.ACCEPT, None),
    (M, CONTACT, FAIL_REJECT, Action.ACCEPT, None),
    (OFF, USER, FAIL_REJECT, Action.ACCEPT, None),
    (OFF, CONTACT, TEMPERROR, Action.ACCEPT, None),
]


@pytest.mark.parametrize(("policy", "claim", "auth", "action", "answer"), TABLE)
def test_decision_table(policy: SenderAuthPolicy, claim: Claim, auth: AuthResult | None,
                        action: Action, answer: str | None) -> None:
    """Each policy × claim × result gives the action and SMTP answer of docs/sender-auth.md."""
    decision = decide(auth, policy, claim)
    assert decision.action is action
    assert (None if decision.answer is None
            else f"{decision.answer.code} {decision.answer.status}") == answer
    assert decision.attach_to_thread is (action is Action.ACCEPT)


def test_monitor_says_what_enforce_would_have_done() -> None:
    """Under monitor the refusal is recorded, not sent."""
    decision = decide(FAIL_REJECT, M, USER)
    assert decision.action is Action.ACCEPT and decision.answer is None
    assert decision.would is Action.REFUSE
    assert decision.failed_check is FailedCheck.DMARC
    assert decision.reason.startswith("DMARC check failed for example.test (p=reject)")


def test_refusal_text_names_the_failed_check() -> None:
    """The 550 text says which check failed and why, in one ASCII line."""
    assert str(decide(FAIL_REJECT, E, USER).answer) == (
        "550 5.7.1 DMARC check failed for example.test (p=reject): SPF fail; no DKIM signature")
    assert str(decide(NO_RECORD_UNALIGNED, E, USER).answer) == (
        "550 5.7.1 SPF and DKIM checks failed for example.test (no DMARC record): "
        "SPF softfail; no DKIM signature")
    assert str(decide(TEMPERROR, E, USER).answer) == (
        "451 4.7.0 Sender authentication of example.test could not be completed: "
        "DNS lookup of _dmarc.example.test TXT timed out; try again later")


def test_refusal_text_is_one_bounded_ascii_line() -> None:
    """A hostile explanation (newlines, non-ASCII, length) cannot break the SMTP reply."""
    hostile = result(DmarcCheck(DmarcResult.FAIL, "example.test", REJECT, Disposition.REJECT,
                                Disposition.REJECT,
                                explanation="bad\r\n250 OK\r\nüber " + "x" * 2000))
    text = str(decide(hostile, E, USER).answer)
    assert "\r" not in text and "\n" not in text and text.isascii()
    assert len(text) < 512 and text.endswith("...")


def test_contact_tempfail_only_when_the_policy_could_matter() -> None:
    """A temperror of a p=none domain cannot detach a contact's reply: accepted."""
    relaxed = result(DmarcCheck(DmarcResult.TEMPERROR, "monitor.test",
                                DmarcRecord("monitor.test", Disposition.NONE), Disposition.NONE,
                                explanation="DKIM key timed out"))
    assert decide(relaxed, E, CONTACT).action is Action.ACCEPT
    assert decide(relaxed, E, USER).action is Action.TEMPFAIL


# --- DMARC records -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("v=DMARC1; p=reject", DmarcRecord("d.test", Disposition.REJECT)),
    ("v=DMARC1;p=quarantine;sp=none;pct=20;adkim=s;aspf=s",
     DmarcRecord("d.test", Disposition.QUARANTINE, Disposition.NONE, 20, Alignment.STRICT,
                 Alignment.STRICT)),
    ("v=DMARC1; p=REJECT; pct=250; adkim=x", DmarcRecord("d.test", Disposition.REJECT)),
    ("v=DMARC1; p=bogus; rua=mailto:r@d.test", DmarcRecord("d.test", Disposition.NONE)),
    ("v=DMARC1; sp=reject; rua=mailto:r@d.test",
     DmarcRecord("d.test", Disposition.NONE, Disposition.REJECT)),
    ("v=DMARC1; p=bogus", None),
    ("v=DMARC1; sp=reject", None),
    ("p=reject; v=DMARC1", None),  # v= must come first
    ("v=spf1 -all", None),
    ("", None),
])
def test_dmarc_record_parsing(text: str, expected: DmarcRecord | None) -> None:
    """RFC 7489 6.3 and 6.6.3: tags, defaults, and the records that do not count."""
    assert parse_record(text, "d.test") == expected


@pytest.mark.parametrize(("domain", "organizational"), [
    ("example.test", "example.test"),
    ("a.b.example.test", "example.test"),
    ("eu.mail.acme.co.uk", "acme.co.uk"),
    ("acme.github.io", "acme.github.io"),  # a private-section suffix
    ("Mail.Example.TEST.", "example.test"),
    ("co.uk", "co.uk"),
])
def test_organizational_domain(domain: str, organizational: str) -> None:
    """RFC 7489 3.2 over the Public Suffix List the package ships."""
    assert organizational_domain(domain) == organizational


def test_alignment_modes() -> None:
    """Relaxed: same organizational domain; strict: the same name; never across suffixes."""
    assert aligned("mail.example.test", "example.test", Alignment.RELAXED)
    assert not aligned("mail.example.test", "example.test", Alignment.STRICT)
    assert aligned("EXAMPLE.test.", "example.test", Alignment.STRICT)
    assert not aligned("a.co.uk", "b.co.uk", Alignment.RELAXED)
    assert not aligned("evil-example.test", "example.test", Alignment.RELAXED)
    assert not aligned("", "example.test", Alignment.RELAXED)


# --- Headers ------------------------------------------------------------------------

def test_headers_are_unfolded_in_order_and_stop_at_the_body() -> None:
    """Folded values join; a From-looking line in the body is not a header."""
    headers = Headers.parse(b"Authentication-Results: mx.test;\r\n\tdmarc=pass\r\n"
                            b"From: A <a@Example.TEST>\r\n\r\nFrom: b@evil.test\r\n")
    assert headers.all("authentication-results") == ["mx.test;\tdmarc=pass"]
    assert author_domain(headers) == ("example.test", "")


@pytest.mark.parametrize(("raw", "why"), [
    (b"Subject: none\r\n\r\n", "the message has 0 From header fields"),
    (b"From: a@x.test\r\nFrom: b@y.test\r\n\r\n", "the message has 2 From header fields"),
    (b"From: a@x.test, b@y.test\r\n\r\n", "the From header is not exactly one address"),
    (b"From: undisclosed\r\n\r\n", "the From header is not exactly one address"),
    (b"From: a@[192.0.2.1]\r\n\r\n", "the From address has no usable domain"),
])
def test_no_single_author_domain(raw: bytes, why: str) -> None:
    """RFC 7489 6.6.1: without exactly one From domain there is nothing to pass."""
    assert author_domain(Headers.parse(raw)) == (None, why)
