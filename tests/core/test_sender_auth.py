"""Sender authentication against a real DNS server (NSD) with real DKIM keys and seals.

The zone (scripts/dns-for-tests.sh): example.test p=reject sp=quarantine, strict.test
adkim=s aspf=s, quarantine.test, sampled.test p=reject pct=0, monitor.test p=none,
softfail.test ~all and no DMARC, nodmarc.test, nothing.test (no records), forwarder.test
(an ARC-sealing forwarder), evil.test (an attacker's well-configured domain),
permerror.test (two SPF and two DMARC records), broken.test (SERVFAIL) and slow.test
(never answers). Authorized senders of the good domains are in 192.0.2.0/24.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import dkim
import pytest
import spf
from hypothesis import given, settings
from hypothesis import strategies as st

from core.sender_auth import (
    Action,
    ArcResult,
    AuthResult,
    AuthSource,
    Claim,
    Disposition,
    DkimResult,
    DmarcResult,
    FailedCheck,
    SenderAuthConfig,
    SenderAuthenticator,
    SenderAuthPolicy,
    SmtpFacts,
    SpfResult,
    decide,
)
from tests.support.dns import DnsServer

GOOD_IP = "192.0.2.10"
ATTACKER_IP = "198.51.100.66"
FORWARDER_IP = "203.0.113.5"
UPSTREAM = "mx.inboxlog.test"


@pytest.fixture
def auth(dns_server: DnsServer) -> SenderAuthenticator:
    # pct sampling draws 0.5: a pct=0 record is never applied in full.
    return SenderAuthenticator(
        SenderAuthConfig(dns=dns_server.config(),
                         trusted_authserv_ids=frozenset({UPSTREAM}),
                         trusted_arc_sealers=frozenset({"forwarder.test"})),
        sample=lambda: 0.5)


def message(sender: str, *, body: str = "We agree to the terms.\r\n",
            extra: str = "") -> bytes:
    return (f"{extra}From: Someone <{sender}>\r\nTo: log@bcc.test\r\n"
            f"Subject: Terms\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{abs(hash(sender + body))}@mail.test>\r\n\r\n{body}").encode()


def signed(dns: DnsServer, raw: bytes, domain: str) -> bytes:
    signature = dkim.sign(raw, b"s1", domain.encode(), dns.key(domain),
                          include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return bytes(signature) + raw


def smtp(mail_from: str, ip: str = GOOD_IP, helo: str = "mx.sender.test") -> SmtpFacts:
    return SmtpFacts(client_ip=ip, helo=helo, mail_from=mail_from)


def enforce_user(result: AuthResult) -> str:
    decision = decide(result, SenderAuthPolicy.ENFORCE, Claim.PORTAL_USER)
    return str(decision.answer) if decision.answer else str(decision.action)


# --- SPF ---------------------------------------------------------------------------

def test_spf_pass_from_an_authorized_address(auth: SenderAuthenticator) -> None:
    """The envelope sender's domain authorizes the client address: SPF pass, DMARC pass."""
    result = auth.check(message("ann@example.test"), smtp("ann@example.test"))
    assert result.spf.result is SpfResult.PASS and result.spf.domain == "example.test"
    assert result.dmarc.result is DmarcResult.PASS and result.dmarc.aligned_spf
    assert result.source is AuthSource.CHECKED
    assert enforce_user(result) == "accept"


def test_spf_fail_refuses_a_portal_user_naming_dmarc(auth: SenderAuthenticator) -> None:
    """From an outsider's address, a user's p=reject domain fails SPF: 550 5.7.1, DMARC."""
    result = auth.check(message("ann@example.test"), smtp("ann@example.test", ATTACKER_IP))
    assert result.spf.result is SpfResult.FAIL
    assert result.dmarc.result is DmarcResult.FAIL
    assert result.dmarc.policy is Disposition.REJECT
    answer = enforce_user(result)
    assert answer.startswith("550 5.7.1 DMARC check failed for example.test (p=reject)")
    assert "SPF fail for example.test" in answer and "no DKIM signature" in answer


def test_spf_softfail_without_dmarc_refuses_naming_spf_and_dkim(
        auth: SenderAuthenticator) -> None:
    """A ~all domain with no DMARC record and no signature: refused, both checks named."""
    result = auth.check(message("sam@softfail.test"), smtp("sam@softfail.test", ATTACKER_IP))
    assert result.spf.result is SpfResult.SOFTFAIL
    assert result.dmarc.result is DmarcResult.NONE
    decision = decide(result, SenderAuthPolicy.ENFORCE, Claim.PORTAL_USER)
    assert decision.failed_check is FailedCheck.SPF_AND_DKIM
    assert str(decision.answer).startswith(
        "550 5.7.1 SPF and DKIM checks failed for softfail.test (no DMARC record): "
        "SPF softfail for softfail.test; no DKIM signature")


def test_no_records_at_all_refuses_a_portal_user(auth: SenderAuthenticator) -> None:
    """A domain that publishes nothing proves nothing: SPF none, DMARC none, refused."""
    result = auth.check(message("nick@nothing.test"), smtp("nick@nothing.test"))
    assert result.spf.result is SpfResult.NONE
    assert result.dmarc.result is DmarcResult.NONE and result.dmarc.record is None
    assert enforce_user(result).startswith("550 5.7.1 SPF and DKIM checks failed")


def test_spf_pass_without_dmarc_is_enough_for_a_portal_user(auth: SenderAuthenticator) -> None:
    """No DMARC record, but SPF passes for the From domain itself: accepted."""
    result = auth.check(message("nora@nodmarc.test"), smtp("nora@nodmarc.test"))
    assert result.dmarc.result is DmarcResult.NONE and result.dmarc.aligned_spf
    assert enforce_user(result) == "accept"


def test_the_attackers_own_spf_pass_does_not_vouch_for_the_from_domain(
        auth: SenderAuthenticator) -> None:
    """MAIL FROM the attacker's own domain (SPF pass) with From a user: not aligned."""
    result = auth.check(message("ann@nodmarc.test"), smtp("x@evil.test", "198.51.100.9"))
    assert result.spf.result is SpfResult.PASS and result.spf.domain == "evil.test"
    assert not result.dmarc.aligned_spf
    assert "SPF passes for evil.test, which is not aligned with nodmarc.test" in enforce_user(
        result)


def test_null_sender_checks_the_helo_name(auth: SenderAuthenticator) -> None:
    """A bounce (MAIL FROM:<>) is checked by its HELO name, RFC 7208 section 2.4."""
    result = auth.check(message("mailer-daemon@example.test"),
                        smtp("", helo="mail.example.test"))
    assert result.spf.scope == "helo" and result.spf.domain == "mail.example.test"
    assert result.spf.result is SpfResult.PASS
    assert result.dmarc.result is DmarcResult.PASS  # relaxed: mail.example.test ~ example.test


def test_an_ipv4_client_seen_through_a_dual_stack_socket_is_checked_as_ipv4(
        auth: SenderAuthenticator) -> None:
    """::ffff:192.0.2.10 is 192.0.2.10, which the ip4: mechanism authorizes."""
    result = auth.check(message("ann@example.test"), smtp("ann@example.test", "::ffff:" + GOOD_IP))
    assert result.spf.result is SpfResult.PASS


@pytest.mark.parametrize(("ip", "mail_from", "helo"), [
    ("", "ann@example.test", "mx.test"),  # no client address (a UNIX socket)
    (GOOD_IP, "ann", "mx.test"),  # no domain in the envelope sender
    (GOOD_IP, "", ""),  # null sender, no HELO name
    (GOOD_IP, "", "[192.0.2.10]"),  # null sender, an address literal for HELO
])
def test_nothing_to_check_is_spf_none(auth: SenderAuthenticator, ip: str, mail_from: str,
                                      helo: str) -> None:
    """Without a client address or a domain SPF says none, and asks no DNS."""
    result = auth.check(message("ann@example.test"), smtp(mail_from, ip, helo))
    assert result.spf.result is SpfResult.NONE
    assert enforce_user(result).startswith("550 5.7.1 DMARC check failed for example.test")


def test_two_spf_records_are_a_permerror_and_two_dmarc_records_none(
        auth: SenderAuthenticator) -> None:
    """RFC 7208 4.5 (several SPF records) and RFC 7489 6.6.3 (several DMARC records)."""
    result = auth.check(message("pat@permerror.test"), smtp("pat@permerror.test"))
    assert result.spf.result is SpfResult.PERMERROR
    assert result.dmarc.result is DmarcResult.NONE and result.dmarc.record is None


# --- DKIM --------------------------------------------------------------------------

def test_dkim_pass_aligns_when_spf_fails(auth: SenderAuthenticator, dns_server: DnsServer
                                         ) -> None:
    """Signed by the From domain but sent from elsewhere: DKIM alone makes DMARC pass."""
    raw = signed(dns_server, message("ann@example.test"), "example.test")
    result = auth.check(raw, smtp("bounces@example.test", ATTACKER_IP))
    assert result.spf.result is SpfResult.FAIL
    assert [(s.result, s.domain, s.selector) for s in result.dkim] == [
        (DkimResult.PASS, "example.test", "s1")]
    assert result.dmarc.result is DmarcResult.PASS
    assert result.dmarc.aligned_dkim == "example.test"
    assert enforce_user(result) == "accept"


def test_dkim_fails_when_the_body_is_altered(auth: SenderAuthenticator, dns_server: DnsServer
                                             ) -> None:
    """A signed message whose body changed after signing: DKIM fail, and DMARC with it."""
    raw = signed(dns_server, message("ann@example.test"), "example.test")
    altered = raw.replace(b"We agree to the terms.", b"We agree to a 90% discount.")
    result = auth.check(altered, smtp("ann@example.test", ATTACKER_IP))
    assert result.dkim_result is DkimResult.FAIL
    assert result.dmarc.result is DmarcResult.FAIL
    assert "DKIM signature of example.test fail" in enforce_user(result)


def test_a_missing_key_is_a_dkim_failure(auth: SenderAuthenticator, dns_server: DnsServer
                                         ) -> None:
    """A signature whose selector has no key in DNS does not verify."""
    raw = signed(dns_server, message("ann@example.test"), "example.test")
    raw = raw.replace(b"s=s1;", b"s=gone;", 1)
    result = auth.check(raw, smtp("ann@example.test", ATTACKER_IP))
    assert [(s.result, s.selector) for s in result.dkim] == [(DkimResult.FAIL, "gone")]


def test_a_signature_of_another_domain_does_not_align(auth: SenderAuthenticator,
                                                      dns_server: DnsServer) -> None:
    """The attacker signs with their own valid key: DKIM passes, for the wrong domain."""
    raw = signed(dns_server, message("ann@example.test"), "evil.test")
    result = auth.check(raw, smtp("x@evil.test", "198.51.100.9"))
    assert result.dkim_result is DkimResult.PASS
    assert result.dmarc.result is DmarcResult.FAIL and result.dmarc.aligned_dkim is None
    assert "DKIM passes only for evil.test, not aligned with example.test" in enforce_user(
        result)


# --- DMARC alignment and policies ----------------------------------------------------

def test_relaxed_alignment_accepts_a_subdomain_signature(auth: SenderAuthenticator,
                                                         dns_server: DnsServer) -> None:
    """example.test is relaxed: a signature of mail.example.test aligns with it."""
    raw = signed(dns_server, message("ann@example.test"), "mail.example.test")
    result = auth.check(raw, smtp("ann@example.test", ATTACKER_IP))
    assert result.dmarc.result is DmarcResult.PASS
    assert result.dmarc.aligned_dkim == "mail.example.test"


def test_strict_alignment_needs_the_exact_domain(auth: SenderAuthenticator,
                                                 dns_server: DnsServer) -> None:
    """strict.test (adkim=s aspf=s): mail.strict.test's SPF and DKIM pass but do not align;
    a signature of strict.test itself does."""
    raw = message("sue@strict.test")
    result = auth.check(signed(dns_server, raw, "mail.strict.test"),
                        smtp("sue@mail.strict.test"))
    assert result.spf.result is SpfResult.PASS and result.dkim_result is DkimResult.PASS
    assert result.dmarc.result is DmarcResult.FAIL
    assert "(strict)" in result.dmarc.explanation
    passing = auth.check(signed(dns_server, raw, "strict.test"), smtp("sue@mail.strict.test"))
    assert passing.dmarc.result is DmarcResult.PASS


def test_subdomain_policy_comes_from_sp(auth: SenderAuthenticator) -> None:
    """news.example.test has no record: the organizational one applies, with sp=quarantine;
    own.example.test has its own p=none, which wins."""
    news = auth.check(message("n@news.example.test"), smtp("n@news.example.test", ATTACKER_IP))
    assert news.dmarc.result is DmarcResult.FAIL
    assert news.dmarc.record is not None and news.dmarc.record.domain == "example.test"
    assert news.dmarc.policy is Disposition.QUARANTINE
    own = auth.check(message("o@own.example.test"), smtp("o@own.example.test", ATTACKER_IP))
    assert own.dmarc.record is not None and own.dmarc.record.domain == "own.example.test"
    assert own.dmarc.policy is Disposition.NONE


def test_pct_zero_applies_the_next_milder_disposition(auth: SenderAuthenticator) -> None:
    """p=reject pct=0: a failing message not sampled is treated as quarantine (6.6.4)."""
    result = auth.check(message("s@sampled.test"), smtp("s@sampled.test", ATTACKER_IP))
    assert result.dmarc.policy is Disposition.REJECT
    assert result.dmarc.disposition is Disposition.QUARANTINE


def test_several_from_addresses_cannot_pass(auth: SenderAuthenticator) -> None:
    """Two From addresses: no single author domain, refused naming the From header."""
    raw = message("ann@example.test").replace(
        b"From: Someone <ann@example.test>", b"From: ann@example.test, eve@evil.test")
    result = auth.check(raw, smtp("ann@example.test"))
    assert result.dmarc.result is DmarcResult.PERMERROR
    decision = decide(result, SenderAuthPolicy.ENFORCE, Claim.PORTAL_USER)
    assert decision.failed_check is FailedCheck.FROM
    assert str(decision.answer) == (
        "550 5.7.1 Sender authentication failed: the From header is not exactly one address")


# --- A forged reply from a contact ---------------------------------------------------

def test_forged_contact_reply_of_a_reject_domain_is_not_threaded(
        auth: SenderAuthenticator) -> None:
    """A "reply" claiming a contact of a p=reject domain, failing DMARC: logged, detached."""
    result = auth.check(message("carl@quarantine.test"), smtp("x@evil.test", "198.51.100.9"))
    decision = decide(result, SenderAuthPolicy.ENFORCE, Claim.CONTACT)
    assert decision.action is Action.DETACH and not decision.attach_to_thread
    assert decision.failed_check is FailedCheck.DMARC
    assert decision.answer is None
    assert "p=quarantine" in decision.reason


def test_contact_of_a_p_none_domain_still_threads(auth: SenderAuthenticator) -> None:
    """A p=none domain asks for nothing: its failing reply is threaded."""
    result = auth.check(message("mo@monitor.test"), smtp("mo@monitor.test", ATTACKER_IP))
    assert result.dmarc.result is DmarcResult.FAIL
    assert decide(result, SenderAuthPolicy.ENFORCE, Claim.CONTACT).attach_to_thread


def test_genuine_contact_reply_threads(auth: SenderAuthenticator, dns_server: DnsServer
                                       ) -> None:
    """Signed by the contact's domain: attached to its thread."""
    raw = signed(dns_server, message("carl@quarantine.test"), "quarantine.test")
    result = auth.check(raw, smtp("carl@quarantine.test", ATTACKER_IP))
    assert decide(result, SenderAuthPolicy.ENFORCE, Claim.CONTACT).attach_to_thread


# --- DNS failures --------------------------------------------------------------------

def test_dns_timeout_is_temporary_never_a_pass(auth: SenderAuthenticator) -> None:
    """slow.test's server never answers: SPF and DMARC temperror, 451 4.7.0, in time."""
    started = time.monotonic()
    result = auth.check(message("tim@slow.test"), smtp("tim@slow.test"))
    assert time.monotonic() - started < 4
    assert result.spf.result is SpfResult.TEMPERROR
    assert result.dmarc.result is DmarcResult.TEMPERROR
    answer = enforce_user(result)
    assert answer.startswith("451 4.7.0 Sender authentication of slow.test could not be "
                             "completed: DNS lookup of _dmarc.slow.test TXT timed out")
    assert answer.endswith("try again later")
    contact = decide(result, SenderAuthPolicy.ENFORCE, Claim.CONTACT)
    assert contact.action is Action.TEMPFAIL
    monitored = decide(result, SenderAuthPolicy.MONITOR, Claim.PORTAL_USER)
    assert monitored.action is Action.ACCEPT and monitored.would is Action.TEMPFAIL


def test_servfail_is_temporary(auth: SenderAuthenticator) -> None:
    """broken.test answers SERVFAIL: a temporary error, not "no record"."""
    result = auth.check(message("bo@broken.test"), smtp("bo@broken.test"))
    assert result.spf.result is SpfResult.TEMPERROR
    assert result.dmarc.result is DmarcResult.TEMPERROR
    assert "the server answered with an error" in result.dmarc.explanation
    assert enforce_user(result).startswith("451 4.7.0")


def test_a_timeout_of_an_unaligned_check_does_not_block_a_pass(
        auth: SenderAuthenticator, dns_server: DnsServer) -> None:
    """The envelope sender's domain times out, but the From domain's DKIM passes."""
    raw = signed(dns_server, message("ann@example.test"), "example.test")
    result = auth.check(raw, smtp("bounce@slow.test"))
    assert result.spf.result is SpfResult.TEMPERROR
    assert result.dmarc.result is DmarcResult.PASS
    assert enforce_user(result) == "accept"


def test_answers_are_cached_for_their_ttl(auth: SenderAuthenticator) -> None:
    """The second message of a domain is checked from the cache."""
    auth.check(message("ann@example.test"), smtp("ann@example.test"))
    hits = auth.resolver.cache.hits()
    auth.check(message("ann@example.test"), smtp("ann@example.test"))
    assert auth.resolver.cache.hits() > hits
    # The zone's TTL is 300 s: the entry expires then (dnspython keeps the expiration).
    entry = next(iter(auth.resolver.cache.data.values()))
    assert 0 < entry.value.expiration - time.time() <= 300


def test_pyspf_never_falls_back_to_the_system_resolver() -> None:
    """Outside a check (no resolver set), pyspf's DNS raises a temporary error."""
    result, _code, _text = spf.query(i=GOOD_IP, s="ann@example.test", h="x").check()
    assert result == "temperror"


async def test_the_async_face_runs_off_the_event_loop(auth: SenderAuthenticator) -> None:
    """While a check waits on a silent server, the event loop keeps running."""
    ticks = 0
    loop_thread = threading.get_ident()

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    result = await auth.check_async(message("tim@slow.test"), smtp("tim@slow.test"))
    ticker.cancel()
    assert result.dmarc.result is DmarcResult.TEMPERROR
    assert ticks >= 10
    assert threading.get_ident() == loop_thread


# --- ARC ---------------------------------------------------------------------------

def forwarded(dns: DnsServer, sealer: str, *, results: str, sender: str = "ann@example.test"
              ) -> bytes:
    """What a forwarding mailbox provider delivers: its own Authentication-Results of the
    original, then its ARC set over the whole message."""
    raw = message(sender, extra=f"Authentication-Results: {sealer}; {results}\r\n")
    arc_set = dkim.arc_sign(raw, b"s1", sealer.encode(), dns.key(sealer), sealer.encode())
    return b"".join(arc_set) + raw


FORWARDED_OK = ("spf=pass smtp.mailfrom=ann@example.test; dkim=none; "
                "dmarc=pass header.from=example.test")
SRS = "SRS0=HHH=TT=example.test=ann@forwarder.test"


def test_arc_seal_of_a_trusted_forwarder_rescues_dmarc(auth: SenderAuthenticator,
                                                       dns_server: DnsServer) -> None:
    """Forwarded by forwarder.test (SRS sender, so SPF no longer aligns): the chain
    validates and the trusted sealer says the original passed: accepted."""
    raw = forwarded(dns_server, "forwarder.test", results=FORWARDED_OK)
    result = auth.check(raw, smtp(SRS, FORWARDER_IP))
    assert result.dmarc.result is DmarcResult.FAIL
    assert result.arc.result is ArcResult.PASS and result.arc.sealer == "forwarder.test"
    assert result.arc.vouched and result.authenticated
    assert enforce_user(result) == "accept"
    assert "ARC chain sealed by forwarder.test (trusted)" in result.reason


def test_arc_seal_of_an_untrusted_sealer_is_not_enough(auth: SenderAuthenticator,
                                                       dns_server: DnsServer) -> None:
    """evil.test seals a valid chain claiming dmarc=pass: nobody trusts it, so it is not
    even validated."""
    raw = forwarded(dns_server, "evil.test", results=FORWARDED_OK)
    result = auth.check(raw, smtp("x@evil.test", "198.51.100.9"))
    assert result.arc.result is ArcResult.NONE and not result.arc.vouched
    assert result.arc.sealer == "evil.test"
    assert result.arc.explanation == "not validated: evil.test is not a trusted ARC sealer"
    assert enforce_user(result).startswith("550 5.7.1 DMARC check failed for example.test")


def test_arc_chain_broken_after_sealing_fails(auth: SenderAuthenticator,
                                              dns_server: DnsServer) -> None:
    """The body changed after the trusted forwarder sealed it: the chain fails."""
    raw = forwarded(dns_server, "forwarder.test", results=FORWARDED_OK)
    result = auth.check(raw.replace(b"the terms", b"a 90% discount"), smtp(SRS, FORWARDER_IP))
    assert result.arc.result is ArcResult.FAIL and not result.arc.vouched
    assert enforce_user(result).startswith("550 5.7.1")


def test_arc_seal_that_saw_a_failure_does_not_vouch(auth: SenderAuthenticator,
                                                    dns_server: DnsServer) -> None:
    """The trusted sealer itself recorded dmarc=fail on arrival: no rescue."""
    raw = forwarded(dns_server, "forwarder.test",
                    results="spf=fail smtp.mailfrom=ann@example.test; "
                            "dmarc=fail header.from=example.test")
    result = auth.check(raw, smtp(SRS, FORWARDER_IP))
    assert result.arc.result is ArcResult.PASS and not result.arc.vouched
    assert not result.authenticated


# --- Authentication-Results ------------------------------------------------------------

FORGED = (f"Authentication-Results: {UPSTREAM}; spf=pass smtp.mailfrom=ann@example.test; "
          "dkim=pass header.d=example.test; dmarc=pass header.from=example.test\r\n")


def test_a_senders_authentication_results_are_ignored_by_the_check(
        auth: SenderAuthenticator) -> None:
    """An outsider's message carrying a "pass" under our own authserv-id: checked anyway."""
    raw = message("ann@example.test", extra=FORGED)
    result = auth.check(raw, smtp("ann@example.test", ATTACKER_IP))
    assert result.source is AuthSource.CHECKED
    assert result.dmarc.result is DmarcResult.FAIL
    assert enforce_user(result).startswith("550 5.7.1")


def test_the_topmost_trusted_authentication_results_is_honoured(
        auth: SenderAuthenticator) -> None:
    """Relayed by the trusted upstream: its header (topmost of its id) decides; one of
    another id above it and the sender's forgery below it do not count."""
    raw = message("ann@example.test", extra=(
        "Authentication-Results: other.test; dmarc=fail header.from=example.test\r\n"
        f"Authentication-Results: {UPSTREAM.upper()}; spf=pass smtp.mailfrom=ann@example.test; "
        "dkim=none; dmarc=pass header.from=example.test\r\n"
        f"Authentication-Results: {UPSTREAM}; dmarc=fail header.from=example.test\r\n"))
    result = auth.from_upstream(raw)
    assert result is not None and result.source is AuthSource.UPSTREAM
    assert result.authserv_id == UPSTREAM
    assert result.spf.result is SpfResult.PASS and result.spf.domain == "example.test"
    assert result.dmarc.result is DmarcResult.PASS
    assert enforce_user(result) == "accept"


def test_a_trusted_failure_refuses_even_below_a_forged_pass(
        auth: SenderAuthenticator) -> None:
    """The upstream said fail; the forged pass the sender put below it is ignored."""
    raw = message("ann@example.test", extra=(
        f"Authentication-Results: {UPSTREAM}; spf=fail smtp.mailfrom=ann@example.test; "
        "dkim=none; dmarc=fail header.from=example.test\r\n" + FORGED))
    result = auth.from_upstream(raw)
    assert result is not None and result.dmarc.result is DmarcResult.FAIL
    assert result.dmarc.policy is Disposition.REJECT  # looked up here, for the policy
    assert enforce_user(result).startswith("550 5.7.1 DMARC check failed for example.test")


def test_upstream_spf_and_dkim_without_a_dmarc_verdict_are_evaluated_here(
        auth: SenderAuthenticator) -> None:
    """Upstream reported only SPF and DKIM: alignment and policy are computed here."""
    raw = message("ann@example.test", extra=(
        f"Authentication-Results: {UPSTREAM}; spf=pass smtp.mailfrom=x@evil.test; "
        "dkim=pass header.d=mail.example.test header.s=s1\r\n"))
    result = auth.from_upstream(raw)
    assert result is not None
    assert result.dmarc.result is DmarcResult.PASS
    assert result.dmarc.aligned_dkim == "mail.example.test"


def test_no_trusted_header_means_no_upstream_result(auth: SenderAuthenticator) -> None:
    """Only headers of other ids: nothing to honour (the caller treats it as local)."""
    raw = message("ann@example.test",
                  extra="Authentication-Results: other.test; dmarc=pass header.from=x.test\r\n")
    assert auth.from_upstream(raw) is None


def test_an_unreadable_trusted_header_does_not_pass(auth: SenderAuthenticator) -> None:
    """The topmost trusted header does not parse: nothing below it is read instead."""
    raw = message("ann@example.test", extra=(
        f"Authentication-Results: {UPSTREAM}; dmarc=(((\r\n" + FORGED))
    result = auth.from_upstream(raw)
    assert result is not None and not result.authenticated
    assert "unreadable" in result.reason
    assert enforce_user(result).startswith("550 5.7.1")


def test_the_result_as_json(auth: SenderAuthenticator, dns_server: DnsServer) -> None:
    """The dict kept on the email: each check, its domain, the policy and the reason."""
    raw = signed(dns_server, message("ann@example.test"), "example.test")
    stored = auth.check(raw, smtp("ann@example.test")).as_json()
    assert stored["spf"] == {"result": "pass", "domain": "example.test", "scope": "mfrom"}
    assert stored["dkim"] == {"result": "pass", "signatures": [
        {"result": "pass", "domain": "example.test", "selector": "s1"}]}
    assert stored["dmarc"]["result"] == "pass" and stored["dmarc"]["policy"] == "reject"
    assert stored["arc"] == {"result": "none", "sealer": None, "vouched": False}
    assert stored["reason"].startswith("DMARC pass for example.test (p=reject)")


# --- Hostile input -----------------------------------------------------------------------

def test_a_header_section_dkimpy_cannot_parse_is_a_failure_not_a_crash(
        auth: SenderAuthenticator, dns_server: DnsServer) -> None:
    """A line without a colon among the headers: DKIM permerror, ARC fail, refused."""
    raw = forwarded(dns_server, "forwarder.test", results=FORWARDED_OK)
    raw = signed(dns_server, raw, "example.test").replace(b"To: ", b"Bogus line\r\nTo: ", 1)
    result = auth.check(raw, smtp(SRS, FORWARDER_IP))
    assert [s.result for s in result.dkim] == [DkimResult.PERMERROR]
    assert result.arc.result is ArcResult.FAIL
    assert enforce_user(result).startswith("550 5.7.1")


@settings(max_examples=60, deadline=None)
@given(headers=st.lists(st.tuples(
           st.sampled_from(["From", "DKIM-Signature", "ARC-Seal", "ARC-Message-Signature",
                            "ARC-Authentication-Results", "Authentication-Results", "X"]),
           st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=60)),
           max_size=6),
       body=st.binary(max_size=200))
def test_any_message_gets_a_result(dns_server: DnsServer, headers: list[tuple[str, str]],
                                   body: bytes) -> None:
    """Whatever the sender writes in these headers, checking gives a result, never raises."""
    auth = SenderAuthenticator(SenderAuthConfig(
        dns=dns_server.config(), trusted_authserv_ids=frozenset({UPSTREAM}),
        trusted_arc_sealers=frozenset({"forwarder.test"})))
    raw = b"".join(f"{name}: {value}\r\n".encode() for name, value in headers) + b"\r\n" + body
    checked = auth.check(raw, smtp("ann@example.test", ATTACKER_IP))
    assert not checked.authenticated
    for policy in SenderAuthPolicy:
        for claim in Claim:
            decide(checked, policy, claim)
    upstream = auth.from_upstream(raw)
    assert upstream is None or upstream.source is AuthSource.UPSTREAM


async def test_the_async_face_uses_the_executor_it_is_given(dns_server: DnsServer) -> None:
    """Given threads of its own, the check runs there, not in asyncio's default ones."""
    submitted = []

    class Counting(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            submitted.append(fn)
            return super().submit(fn, *args, **kwargs)

    with Counting(2, thread_name_prefix="sender-auth") as executor:
        auth = SenderAuthenticator(SenderAuthConfig(dns=dns_server.config()), executor=executor)
        result = await auth.check_async(message("ann@example.test"), smtp("ann@example.test"))
        upstream = await auth.from_upstream_async(message("ann@example.test"))
    assert result.dmarc.result is DmarcResult.PASS and upstream is None
    assert len(submitted) == 2


def test_a_trusted_authserv_id_with_a_version_is_recognised(auth: SenderAuthenticator) -> None:
    """RFC 8601 2.2: "authserv-id [version]" and a comment name the same server."""
    raw = message("ann@example.test", extra=(
        f"Authentication-Results: {UPSTREAM} 1 (postfix); spf=pass "
        "smtp.mailfrom=ann@example.test; dmarc=pass header.from=example.test\r\n"))
    result = auth.from_upstream(raw)
    assert result is not None and result.authserv_id == UPSTREAM and result.authenticated


def test_a_second_arc_authentication_results_cannot_smuggle_a_pass(
        auth: SenderAuthenticator, dns_server: DnsServer) -> None:
    """A forged AAR of the trusted sealer's instance, added above its real one (which saw a
    failure): the chain no longer validates, nothing is vouched for."""
    raw = forwarded(dns_server, "forwarder.test",
                    results="spf=fail smtp.mailfrom=ann@example.test; "
                            "dmarc=fail header.from=example.test")
    forged = (b"ARC-Authentication-Results: i=1; forwarder.test; "
              b"dmarc=pass header.from=example.test\r\n")
    result = auth.check(forged + raw, smtp(SRS, FORWARDER_IP))
    assert not result.arc.vouched and not result.authenticated
    assert result.arc.result is not ArcResult.PASS


def test_unaligned_signatures_of_dead_domains_cannot_stall_the_check(
        auth: SenderAuthenticator, dns_server: DnsServer) -> None:
    """Five signatures whose keys live on a silent server, above the From domain's own:
    the aligned one is verified first, the rest share a bounded DNS time."""
    raw = signed(dns_server, message("ann@example.test"), "example.test")
    junk = b"".join(
        f"DKIM-Signature: v=1; a=rsa-sha256; d=slow.test; s=k{n}; c=relaxed/relaxed; "
        f"h=from; bh=AAAA; b=AAAA\r\n".encode() for n in range(5))
    started = time.monotonic()
    result = auth.check(junk + raw, smtp("ann@example.test", ATTACKER_IP))
    elapsed = time.monotonic() - started
    assert [s.domain for s in result.dkim] == ["slow.test"] * 5 + ["example.test"]
    assert result.dkim[-1].result is DkimResult.PASS
    assert {s.result for s in result.dkim[:5]} == {DkimResult.TEMPERROR}
    assert result.dmarc.result is DmarcResult.PASS
    assert elapsed < 3 * auth.resolver.config.lifetime + 0.5


def test_a_seal_that_only_names_a_trusted_sealer_fails(auth: SenderAuthenticator,
                                                       dns_server: DnsServer) -> None:
    """evil.test's seal relabelled d=forwarder.test: validated against the trusted key, and
    it fails."""
    raw = forwarded(dns_server, "evil.test", results=FORWARDED_OK)
    raw = raw.replace(b"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=evil.test;",
                      b"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=forwarder.test;", 1)
    assert b"d=forwarder.test" in raw
    result = auth.check(raw, smtp(SRS, FORWARDER_IP))
    assert result.arc.result is ArcResult.FAIL and result.arc.sealer == "forwarder.test"
    assert not result.authenticated
