"""Sender authentication through the SMTP port, against the real test DNS server (NSD).

Loopback addresses play the parties the zone (scripts/dns-for-tests.sh) authorizes:
127.0.0.6 the users' own mail servers, 127.0.0.7 an ARC-sealing forwarder, 127.0.0.5 an
outsider with a well-configured domain of its own (evil.test). 127.0.0.1 is a trusted
network: local submission, or the upstream MTA whose Authentication-Results count.
"""

from __future__ import annotations

import ipaddress
import smtplib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dkim
import email_validator
import jsonschema
import pytest

from tests.support.dns import DnsServer
from tests.support.mail import deliver, logged_id
from tests.support.server import PortalAccount, Server

OUTSIDER, SENDER, FORWARDER, LOCAL = "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.1"
UPSTREAM = "mx.inboxlog.test"
USER = "ann@example.test"
# The same user's addresses at domains of every shape the zone has.
ALIASES = ("ann@softfail.test", "ann@nothing.test", "ann@slow.test", "ann@broken.test",
           "ann@nodmarc.test")
SRS = "SRS0=HHH=TT=example.test=ann@forwarder.test"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory,
                dns_server: DnsServer) -> Iterator[Server]:
    """One server for the module, asking only the test DNS server. Users at `.test`
    domains (the zone's) are made here, where email_validator must allow them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(email_validator, "TEST_ENVIRONMENT", True)
        yield from _auth_server(tmp_path_factory, dns_server)


def _auth_server(tmp_path_factory: pytest.TempPathFactory,
                 dns_server: DnsServer) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("sender-auth"), extra_args=(
        "--dns-server", f"127.0.0.1:{dns_server.port}",
        "--dns-stub-zone", f"slow.test=127.0.0.1:{dns_server.silent_port}",
        "--dns-timeout", "0.25",
        "--trusted-authserv-id", UPSTREAM,
        "--trusted-arc-sealers", "forwarder.test",
    )).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def portal(auth_server: Server) -> PortalAccount:
    """A new portal: its policy is enforce."""
    return auth_server.new_portal(USER, *ALIASES, name="Enforcing")


def raw_message(sender: str, *, body: str = "We agree to the terms.\r\n", extra: str = "",
                message_id: str | None = None, references: str | None = None) -> bytes:
    message_id = message_id or f"<{uuid.uuid4().hex}@mail.test>"
    refs = f"In-Reply-To: {references}\r\nReferences: {references}\r\n" if references else ""
    return (f"{extra}From: Someone <{sender}>\r\nTo: Carl <carl@customer.test>\r\n"
            f"Subject: Terms\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
            f"Message-ID: {message_id}\r\n{refs}\r\n{body}").encode()


def signed(dns: DnsServer, raw: bytes, domain: str) -> bytes:
    signature = dkim.sign(raw, b"s1", domain.encode(), dns.key(domain),
                          include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return bytes(signature) + raw


def message_id_of(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError("no Message-ID")


def send(server: Server, raw: bytes, rcpt: str, *, mail_from: str,
         source: str = OUTSIDER, helo: str = "mx.sender.test") -> tuple[int, str]:
    smtp = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30, source_address=(source, 0))
    try:
        smtp.ehlo(helo)
        return deliver(server, raw, rcpt, mail_from=mail_from, smtp=smtp)
    finally:
        smtp.quit()


def email(server: Server, account: PortalAccount, email_id: int) -> dict[str, Any]:
    with server.api(account.user_token) as api:
        response = api.get(f"/api/v1/emails/{email_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def logged_as(server: Server, account: PortalAccount, message_id: str) -> list[Any]:
    with server.api(account.admin_token) as api:
        items: list[Any] = api.get("/api/v1/emails", params={"message_id": message_id}
                                   ).json()["items"]
    return items


def entry(server: Server, account: PortalAccount, message_id: str,
          timeout: float = 10) -> dict[str, Any]:
    """The ingest-log entry of a message (recorded after the reply, best effort)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with server.api(account.admin_token) as api:
            for item in api.get("/api/v1/ingest-log").json()["items"]:
                if item["message_id"] == message_id.strip("<>"):
                    return item  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"no ingest-log entry for {message_id}")


def assert_refused(server: Server, account: PortalAccount, raw: bytes, reply: tuple[int, str],
                   code: int, start: str, reason_code: str) -> dict[str, Any]:
    """Refused with this reply, nothing logged, one ingest-log entry with metadata only."""
    assert reply[0] == code, reply
    assert reply[1].startswith(start), reply
    message_id = message_id_of(raw)
    assert logged_as(server, account, message_id) == []
    found = entry(server, account, message_id)
    assert found["reason_code"] == reason_code
    assert found["source"] == "smtp" and found["size"] == len(raw)
    assert "agree" not in str(found)  # metadata only: no body
    return found


# --- pass ----------------------------------------------------------------------------

def test_signed_mail_from_the_users_server_is_logged_with_its_result(
        auth_server: Server, portal: PortalAccount, dns_server: DnsServer) -> None:
    raw = signed(dns_server, raw_message(USER), "example.test")
    email_id = logged_id(send(auth_server, raw, portal.bcc_address, mail_from=USER,
                              source=SENDER))
    auth = email(auth_server, portal, email_id)["auth"]
    assert auth["source"] == "checked" and auth["authserv_id"] is None
    assert auth["spf"] == {"result": "pass", "domain": "example.test", "scope": "mfrom"}
    assert auth["dkim"]["result"] == "pass"
    assert auth["dkim"]["signatures"] == [
        {"result": "pass", "domain": "example.test", "selector": "s1"}]
    assert auth["dmarc"]["result"] == "pass" and auth["dmarc"]["policy"] == "reject"
    assert auth["arc"] == {"result": "none", "sealer": None, "vouched": False}
    assert auth["policy"] == "enforce" and auth["decision"] == "accept"
    assert auth["would"] is None and auth["failed_check"] is None
    assert auth["reason"].startswith("DMARC pass for example.test (p=reject)")


def test_the_auth_object_matches_the_openapi_schema(
        auth_server: Server, portal: PortalAccount, dns_server: DnsServer) -> None:
    raw = signed(dns_server, raw_message(USER), "example.test")
    email_id = logged_id(send(auth_server, raw, portal.bcc_address, mail_from=USER,
                              source=SENDER))
    with auth_server.api(None) as api:
        document = api.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    body = email(auth_server, portal, email_id)
    resolver_doc = {"components": {"schemas": schemas}}
    jsonschema.validate(body, {**schemas["Email"], **resolver_doc})
    # EmailAuth or null (for an object and null, anyOf and oneOf say the same).
    assert schemas["Email"]["properties"]["auth"]["anyOf"] == [
        {"$ref": "#/components/schemas/EmailAuth"}, {"type": "null"}]
    jsonschema.validate(body["auth"], {**schemas["EmailAuth"], **resolver_doc})


# --- refusals ----------------------------------------------------------------------------

def test_spf_fail_of_a_reject_domain_is_refused_naming_dmarc(
        auth_server: Server, portal: PortalAccount) -> None:
    raw = raw_message(USER)
    reply = send(auth_server, raw, portal.bcc_address, mail_from=USER)
    found = assert_refused(auth_server, portal, raw, reply, 550,
                           "5.7.1 DMARC check failed for example.test (p=reject): SPF fail",
                           "not_authenticated")
    assert found["reason"].startswith("dmarc: DMARC check failed for example.test")
    assert found["sender"] == USER and found["envelope_sender"] == USER


def test_the_attackers_own_spf_pass_does_not_make_him_a_user(
        auth_server: Server, portal: PortalAccount) -> None:
    """The issue's attack: MAIL FROM the attacker's own domain (SPF passes there), From
    the user: SPF is not aligned with example.test."""
    raw = raw_message(USER, body="We agree to a 90% discount.\r\n")
    reply = send(auth_server, raw, portal.bcc_address, mail_from="attacker@evil.test")
    assert_refused(auth_server, portal, raw, reply, 550,
                   "5.7.1 DMARC check failed for example.test (p=reject)", "not_authenticated")
    assert "evil.test, which is not aligned with example.test" in reply[1]


def test_the_attackers_own_dkim_signature_does_not_align(
        auth_server: Server, portal: PortalAccount, dns_server: DnsServer) -> None:
    raw = signed(dns_server, raw_message(USER), "evil.test")
    reply = send(auth_server, raw, portal.bcc_address, mail_from="attacker@evil.test")
    assert_refused(auth_server, portal, raw, reply, 550,
                   "5.7.1 DMARC check failed for example.test", "not_authenticated")
    assert "DKIM passes only for evil.test" in reply[1]


@pytest.mark.parametrize("separator", ["\x0c", "\x0b", "\x1c", "\u0085", "\u2028"])
def test_a_line_separator_in_from_does_not_split_the_checked_from_off_the_routed_one(
        auth_server: Server, portal: PortalAccount, dns_server: DnsServer,
        separator: str) -> None:
    """`From: "attacker@evil.test<FF>" <ann@...>`: routing reads the user, so the check must
    judge the user's domain too, not the attacker's (str.splitlines cut the From there)."""
    raw = signed(dns_server, raw_message(USER, body="We agree to a 90% discount.\r\n"
                                         ).replace(b"From: Someone <",
                                                   f'From: "attacker@evil.test{separator}" <'
                                                   .encode()), "evil.test")
    reply = send(auth_server, raw, portal.bcc_address, mail_from="attacker@evil.test")
    assert_refused(auth_server, portal, raw, reply, 550,
                   "5.7.1 DMARC check failed for example.test", "not_authenticated")


def test_an_undeclared_shift_jis_from_is_checked_as_routing_reads_it(
        auth_server: Server, portal: PortalAccount, dns_server: DnsServer) -> None:
    """Undeclared Shift_JIS whose character ends in a backslash: read as bytes it escapes
    a quote and leaves only the attacker's address; decoded, as routing decodes it, the
    first address is the user's. The check must judge the user's domain."""
    name = "こんにちは、世界。お元気ですか".encode("shift_jis") * 2 + "A―".encode("shift_jis")
    assert name.endswith(b"\\")
    raw = signed(dns_server, raw_message(USER, body="We agree to a 90% discount.\r\n").replace(
        f"From: Someone <{USER}>".encode(),
        b'From: "' + name + b'" <' + USER.encode() + b'> "<attacker@evil.test>'), "evil.test")
    reply = send(auth_server, raw, portal.bcc_address, mail_from="attacker@evil.test")
    assert_refused(auth_server, portal, raw, reply, 550, "5.7.1 ", "not_authenticated")


def test_softfail_without_dmarc_is_refused_naming_spf_and_dkim(
        auth_server: Server, portal: PortalAccount) -> None:
    raw = raw_message("ann@softfail.test")
    reply = send(auth_server, raw, portal.bcc_address, mail_from="ann@softfail.test")
    found = assert_refused(
        auth_server, portal, raw, reply, 550,
        "5.7.1 SPF and DKIM checks failed for softfail.test (no DMARC record)",
        "not_authenticated")
    assert "softfail" in reply[1]
    assert found["reason"].startswith("spf+dkim: ")


def test_a_domain_with_no_records_is_refused(auth_server: Server,
                                             portal: PortalAccount) -> None:
    raw = raw_message("ann@nothing.test")
    reply = send(auth_server, raw, portal.bcc_address, mail_from="ann@nothing.test")
    assert_refused(auth_server, portal, raw, reply, 550,
                   "5.7.1 SPF and DKIM checks failed for nothing.test (no DMARC record)",
                   "not_authenticated")


def test_spf_pass_without_dmarc_is_enough(auth_server: Server, portal: PortalAccount) -> None:
    raw = raw_message("ann@nodmarc.test")
    email_id = logged_id(send(auth_server, raw, portal.bcc_address,
                              mail_from="ann@nodmarc.test", source=SENDER))
    auth = email(auth_server, portal, email_id)["auth"]
    assert auth["dmarc"]["result"] == "none" and auth["spf"]["result"] == "pass"


@pytest.mark.parametrize("domain", ["slow.test", "broken.test"])
def test_dns_trouble_is_a_temporary_failure_never_a_pass(
        auth_server: Server, portal: PortalAccount, domain: str) -> None:
    """A DNS timeout (slow.test: a server that never answers) or SERVFAIL (broken.test):
    451 4.7.0, and the sender's MTA retries."""
    raw = raw_message(f"ann@{domain}")
    started = time.monotonic()
    reply = send(auth_server, raw, portal.bcc_address, mail_from=f"ann@{domain}")
    assert time.monotonic() - started < 15
    found = assert_refused(
        auth_server, portal, raw, reply, 451,
        f"4.7.0 Sender authentication of {domain} could not be completed", "auth_unavailable")
    assert reply[1].endswith("try again later")
    assert found["reason"].startswith("dns: ")


def test_a_slow_check_does_not_hold_other_sessions(
        auth_server: Server, portal: PortalAccount) -> None:
    """While a message waits for a dead domain's DNS, local mail is logged at once: the
    check runs on its own threads, off the event loop."""
    replies: list[tuple[tuple[int, str], float]] = []

    def slow_one() -> None:
        reply = send(auth_server, raw_message("ann@slow.test"), portal.bcc_address,
                     mail_from="ann@slow.test")
        replies.append((reply, time.monotonic()))

    slow = threading.Thread(target=slow_one)
    slow.start()
    time.sleep(0.2)
    logged_id(send(auth_server, raw_message(USER), portal.bcc_address, mail_from=USER,
                   source=LOCAL))
    local_done = time.monotonic()
    slow.join(30)
    assert replies and replies[0][0][0] == 451
    assert local_done < replies[0][1]  # logged while the other still waited for DNS


def test_the_proxy_protocols_client_is_the_one_checked() -> None:
    """Behind HAProxy (PROXY protocol), the client checked and matched against the
    trusted networks is the proxy's source, not the proxy."""
    import asyncio

    from aiosmtpd.proxy_protocol import ProxyData
    from aiosmtpd.smtp import Session

    from core.runtime import Settings
    from smtp_ingest.handler import _client

    loop = asyncio.new_event_loop()
    try:
        session = Session(loop)
    finally:
        loop.close()
    session.peer = ("127.0.0.1", 40000)  # type: ignore[assignment]  # as aiosmtpd sets it
    assert _client(session) == "127.0.0.1"
    proxy = ProxyData(version=1)
    proxy.src_addr = ipaddress.ip_address("198.51.100.7")  # type: ignore[misc]
    session.proxy_data = proxy
    assert _client(session) == "198.51.100.7"
    assert not Settings().is_trusted_client(_client(session))
    assert Settings().is_trusted_client("::ffff:127.0.0.1")
    assert not Settings().is_trusted_client("127.0.0.5")


# --- Authentication-Results ----------------------------------------------------------------

FORGED = (f"Authentication-Results: {UPSTREAM}; spf=pass smtp.mailfrom={USER}; "
          "dkim=pass header.d=example.test; dmarc=pass header.from=example.test\r\n")


def test_a_forged_authentication_results_from_the_sender_is_ignored(
        auth_server: Server, portal: PortalAccount) -> None:
    raw = raw_message(USER, extra=FORGED)
    reply = send(auth_server, raw, portal.bcc_address, mail_from=USER)
    assert_refused(auth_server, portal, raw, reply, 550,
                   "5.7.1 DMARC check failed for example.test", "not_authenticated")


def test_the_trusted_upstreams_authentication_results_decide(
        auth_server: Server, portal: PortalAccount) -> None:
    """From the trusted network (Postfix in front): its topmost header of the trusted
    authserv-id counts, a pass below a failure does not."""
    raw = raw_message(USER, extra=FORGED)
    email_id = logged_id(send(auth_server, raw, portal.bcc_address, mail_from=USER,
                              source=LOCAL))
    auth = email(auth_server, portal, email_id)["auth"]
    assert auth["source"] == "upstream" and auth["authserv_id"] == UPSTREAM
    assert auth["dmarc"]["result"] == "pass" and auth["policy"] == "enforce"

    failed = (f"Authentication-Results: {UPSTREAM}; spf=fail smtp.mailfrom={USER}; "
              "dkim=none; dmarc=fail header.from=example.test\r\n")
    raw = raw_message(USER, extra=failed + FORGED)
    reply = send(auth_server, raw, portal.bcc_address, mail_from=USER, source=LOCAL)
    assert_refused(auth_server, portal, raw, reply, 550,
                   "5.7.1 DMARC check failed for example.test (p=reject)", "not_authenticated")


def test_local_submission_is_not_checked(auth_server: Server, portal: PortalAccount) -> None:
    """127.0.0.1 with no upstream header: `make run`'s tour, scripts. Logged, no auth."""
    raw = raw_message(USER)
    email_id = logged_id(send(auth_server, raw, portal.bcc_address, mail_from=USER,
                              source=LOCAL))
    assert email(auth_server, portal, email_id)["auth"] is None


# --- ARC -------------------------------------------------------------------------------

FORWARDED_OK = (f"spf=pass smtp.mailfrom={USER}; dkim=none; "
                "dmarc=pass header.from=example.test")


def forwarded(dns: DnsServer, sealer: str) -> bytes:
    raw = raw_message(USER, extra=f"Authentication-Results: {sealer}; {FORWARDED_OK}\r\n")
    arc_set = dkim.arc_sign(raw, b"s1", sealer.encode(), dns.key(sealer), sealer.encode())
    return b"".join(arc_set) + raw


def test_an_arc_sealed_forward_of_a_trusted_sealer_is_logged(
        auth_server: Server, portal: PortalAccount, dns_server: DnsServer) -> None:
    raw = forwarded(dns_server, "forwarder.test")
    email_id = logged_id(send(auth_server, raw, portal.bcc_address, mail_from=SRS,
                              source=FORWARDER, helo="mx.forwarder.test"))
    auth = email(auth_server, portal, email_id)["auth"]
    assert auth["dmarc"]["result"] == "fail"
    assert auth["arc"] == {"result": "pass", "sealer": "forwarder.test", "vouched": True}
    assert auth["decision"] == "accept"


def test_an_arc_seal_of_an_untrusted_sealer_is_refused(
        auth_server: Server, portal: PortalAccount, dns_server: DnsServer) -> None:
    raw = forwarded(dns_server, "evil.test")
    reply = send(auth_server, raw, portal.bcc_address, mail_from="x@evil.test")
    assert_refused(auth_server, portal, raw, reply, 550,
                   "5.7.1 DMARC check failed for example.test", "not_authenticated")


# --- the forged reply ---------------------------------------------------------------------

def _thread_with(server: Server, account: PortalAccount, dns: DnsServer,
                 contact: str) -> tuple[str, int]:
    root = f"<{uuid.uuid4().hex}@example.test>"
    raw = signed(dns, raw_message(USER, message_id=root).replace(
        b"carl@customer.test", contact.encode()), "example.test")
    email_id = logged_id(send(server, raw, account.bcc_address, mail_from=USER, source=SENDER))
    return root, email(server, account, email_id)["thread_id"]


def test_a_forged_reply_from_a_contact_is_not_attached(
        auth_server: Server, portal: PortalAccount, dns_server: DnsServer) -> None:
    """The issue's second attack: a "reply" from a contact at a p=quarantine domain,
    made to look like the user's forwarding rule (MAIL FROM the user), with References
    of a logged email: it fails DMARC, joins no thread, is not logged (rule mail only
    logs on a thread), and the entry says why."""
    root, _ = _thread_with(auth_server, portal, dns_server, "carl@quarantine.test")
    raw = raw_message("carl@quarantine.test", references=root,
                      body="We accept your 90% discount.\r\n")
    reply = send(auth_server, raw, portal.bcc_address, mail_from=USER)
    assert reply[0] == 250 and reply[1].startswith(
        "2.0.0 not logged: DMARC check failed for quarantine.test (p=quarantine)"), reply
    assert logged_as(auth_server, portal, message_id_of(raw)) == []
    found = entry(auth_server, portal, message_id_of(raw))
    assert found["reason_code"] == "not_authenticated"
    assert "not attached to a thread" in found["reason"]


def test_the_genuine_reply_joins_the_thread(
        auth_server: Server, portal: PortalAccount, dns_server: DnsServer) -> None:
    root, thread_id = _thread_with(auth_server, portal, dns_server, "carl@quarantine.test")
    raw = signed(dns_server, raw_message("carl@quarantine.test", references=root),
                 "quarantine.test")
    email_id = logged_id(send(auth_server, raw, portal.bcc_address, mail_from=USER,
                              source=SENDER))
    body = email(auth_server, portal, email_id)
    assert body["thread_id"] == thread_id and body["direction"] == "incoming"
    assert body["auth"]["dmarc"]["result"] == "pass"


# --- the policy ------------------------------------------------------------------------------

def set_policy(server: Server, account: PortalAccount, policy: str) -> dict[str, Any]:
    with server.api(account.admin_token) as api:
        response = api.patch("/api/v1/settings", json={"sender_auth": policy})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_new_portals_enforce_and_only_an_admin_changes_it(auth_server: Server) -> None:
    account = auth_server.new_portal(USER, name="Policy")
    with auth_server.api(account.user_token) as api:
        assert api.get("/api/v1/settings").json()["sender_auth"] == "enforce"
        assert api.patch("/api/v1/settings", json={"sender_auth": "off"}).status_code == 403
    with auth_server.api(account.admin_token) as api:
        response = api.patch("/api/v1/settings", json={"sender_auth": "lax"})
        assert response.status_code == 422, response.text
    assert set_policy(auth_server, account, "monitor")["sender_auth"] == "monitor"
    with auth_server.api(account.user_token) as api:
        assert api.get("/api/v1/settings").json()["sender_auth"] == "monitor"


def test_monitor_logs_what_enforce_would_refuse(auth_server: Server) -> None:
    account = auth_server.new_portal(USER, name="Monitoring")
    set_policy(auth_server, account, "monitor")
    raw = raw_message(USER)
    email_id = logged_id(send(auth_server, raw, account.bcc_address, mail_from=USER))
    auth = email(auth_server, account, email_id)["auth"]
    assert auth["policy"] == "monitor" and auth["decision"] == "accept"
    assert auth["would"] == "refuse" and auth["failed_check"] == "dmarc"
    assert auth["dmarc"]["result"] == "fail" and auth["spf"]["result"] == "fail"


def test_monitor_keeps_a_forged_reply_on_its_thread_saying_it_would_detach(
        auth_server: Server, dns_server: DnsServer) -> None:
    account = auth_server.new_portal(USER, name="Monitoring replies")
    set_policy(auth_server, account, "monitor")
    root, thread_id = _thread_with(auth_server, account, dns_server, "carl@quarantine.test")
    raw = raw_message("carl@quarantine.test", references=root)
    body = email(auth_server, account, logged_id(
        send(auth_server, raw, account.bcc_address, mail_from=USER)))
    assert body["thread_id"] == thread_id
    assert body["auth"]["would"] == "detach"


def test_off_checks_nothing(auth_server: Server) -> None:
    """Off: what enforce refuses is logged, and not even a dead domain is asked."""
    account = auth_server.new_portal(USER, *ALIASES, name="Off")
    set_policy(auth_server, account, "off")
    email_id = logged_id(send(auth_server, raw_message(USER), account.bcc_address,
                              mail_from=USER))
    assert email(auth_server, account, email_id)["auth"] is None
    started = time.monotonic()
    email_id = logged_id(send(auth_server, raw_message("ann@slow.test"), account.bcc_address,
                              mail_from="ann@slow.test"))
    assert time.monotonic() - started < 1.0  # asking slow.test takes longer than that
    assert email(auth_server, account, email_id)["auth"] is None
