"""Outbound connections of connected inboxes go only to public addresses on mail ports,
unless the operator allows more; nothing a remote service says is echoed back.

No test here sends a packet anywhere but loopback: every address refused below is
refused before any connection is tried (the listeners prove it by counting).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inbox_sync import detect
from inbox_sync.outbound import MAIL_PORTS, Destinations, is_public, parse_rules
from tests.inbox_sync.conftest import Mailbox, new_mailbox
from tests.inbox_sync.hostile import Listener, banner, silent
from tests.support.dovecot import Dovecot
from tests.support.server import Server, free_port
from tests.support.smtp_recorder import SmtpRecorder

LOOPBACK_SPELLINGS = ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1",
                      "localhost", "::1", "::ffff:127.0.0.1", "0:0:0:0:0:ffff:7f00:1"]
NON_PUBLIC = ["10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1",
              "0.0.0.0", "224.0.0.251", "240.0.0.1", "255.255.255.255", "192.0.2.10",
              "198.18.0.1", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "2001:db8::1",
              "64:ff9b::a00:1", "2002:c0a8:101::1", "::"]


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server as deployed: no --allow-mail-hosts."""
    running = Server(tmp_path_factory.mktemp("strict"), allow_mail_hosts="").start()
    yield running
    running.stop()


@pytest.fixture
def listeners() -> Iterator[dict[str, Listener]]:
    """On loopback: a port that answers with an SSH banner, one that stays silent."""
    running = {"banner": Listener(banner), "silent": Listener(silent)}
    yield running
    for listener in running.values():
        listener.stop()


def _connect(server: Server, token: str, imap: dict[str, Any],
             smtp: dict[str, Any] | None = None, address: str = "rep@ourco.example"
             ) -> tuple[int, dict[str, Any], float]:
    body = {"address": address, "password": "pw", "imap": imap,
            "smtp": smtp or {"host": "smtp.ourco.example", "port": 587, "security": "starttls"}}
    started = time.monotonic()
    with server.api(token) as api:
        response = api.post("/api/v1/inboxes", json=body)
    return response.status_code, response.json(), time.monotonic() - started


def test_open_closed_and_silent_ports_get_one_answer_and_no_connection(
        strict_server: Server, listeners: dict[str, Listener]) -> None:
    """A user cannot scan the host: open, closed and silent loopback ports answer the same
    422 destination_not_allowed at once, with no connection made and no banner shown."""
    account = strict_server.new_portal("scanner@ourco.example")
    answers = []
    for port in (listeners["banner"].port, listeners["silent"].port, free_port()):
        status, body, took = _connect(strict_server, account.user_token,
                                      {"host": "127.0.0.1", "port": port, "security": "none"})
        assert status == 422, body
        assert body["error"]["code"] == "destination_not_allowed", body
        assert "SSH" not in body["error"]["message"]
        assert took < 2, took
        answers.append(body["error"]["message"].replace(str(port), "PORT"))
    assert len(set(answers)) == 1, answers
    assert listeners["banner"].accepted == listeners["silent"].accepted == 0


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS + NON_PUBLIC)
def test_loopback_private_and_reserved_addresses_are_refused(strict_server: Server,
                                                             host: str) -> None:
    """Every spelling of loopback, and private, link-local, CGNAT, multicast, reserved and
    documentation addresses (IPv4 and IPv6), are refused on a mail port too."""
    account = strict_server.new_portal(f"probe-{abs(hash(host))}@ourco.example")
    status, body, _took = _connect(strict_server, account.user_token,
                                   {"host": host, "port": 993, "security": "ssl"})
    assert (status, body["error"]["code"]) == (422, "destination_not_allowed"), body


def test_a_public_address_on_another_port_is_refused_before_any_lookup(
        strict_server: Server) -> None:
    """Only mail ports: a public address on port 22 or 6379 is refused without a packet."""
    account = strict_server.new_portal("ports@ourco.example")
    for host, port in (("93.184.215.14", 22), ("imap.gmail.com", 6379),
                       ("2606:4700::1111", 8080)):
        status, body, took = _connect(strict_server, account.user_token,
                                      {"host": host, "port": port, "security": "none"})
        assert (status, body["error"]["code"]) == (422, "destination_not_allowed"), body
        assert took < 2


def test_auto_detection_points_nowhere_private() -> None:
    """The provider table holds only public names on mail ports: proton.me no longer
    detects to 127.0.0.1 (the hosting machine). (Not through HTTP: detecting an unknown
    domain asks DNS for SRV records, and tests send nothing off loopback. SRV answers
    are checked like any other destination: test_loopback_... covers where they lead.)"""
    for known in detect.PROVIDERS.values():
        for endpoint in (known.imap, known.smtp):
            assert endpoint.port in MAIL_PORTS, endpoint
            assert "." in endpoint.host and not endpoint.host[-1].isdigit(), endpoint
            assert ":" not in endpoint.host and "localhost" not in endpoint.host, endpoint
    assert "proton.me" not in detect.PROVIDERS


@pytest.fixture
def allowing_dovecot(tmp_path: Path, dovecot: Dovecot, recorder: SmtpRecorder
                     ) -> Iterator[Server]:
    """A server that allows exactly the test Dovecot's IMAP port and the recorder's port."""
    running = Server(tmp_path / "narrow", allow_mail_hosts=(
        f"127.0.0.1:{dovecot.imap_port},127.0.0.1:{recorder.port}")).start()
    yield running
    running.stop()


def test_the_allow_list_is_per_port_and_covers_smtp_send_and_sync(
        allowing_dovecot: Server, dovecot: Dovecot, recorder: SmtpRecorder,
        listeners: dict[str, Listener]) -> None:
    """--allow-mail-hosts allows what it names and no more: an SMTP server on another
    loopback port is refused at connect; once the rule for the SMTP port is gone, send
    and sync of an inbox stored before are refused too (and the inbox says why)."""
    mailbox: Mailbox = new_mailbox(dovecot, recorder, allowing_dovecot)
    refused = mailbox.post("/api/v1/inboxes", mailbox.connect_body(
        smtp={"host": "127.0.0.1", "port": listeners["banner"].port, "security": "none"}))
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "destination_not_allowed" and "SMTP" in error["message"]
    assert listeners["banner"].accepted == 0
    inbox = mailbox.connect()
    before = len(recorder.messages())

    allowing_dovecot.stop()
    allowing_dovecot.allow_mail_hosts = "127.0.0.1:1"  # neither server any more
    allowing_dovecot.start()
    sent = mailbox.post("/api/v1/emails/send", {"to": ["ann@acme.example"],
                                                "subject": "Hi", "text": "Hello"})
    assert sent.status_code == 422, sent.text
    assert sent.json()["error"]["code"] == "destination_not_allowed"
    assert len(recorder.messages()) == before
    synced = mailbox.post(f"/api/v1/inboxes/{inbox['id']}/sync")
    assert synced.status_code == 422, synced.text
    assert synced.json()["error"]["code"] == "destination_not_allowed"
    state = mailbox.get(f"/api/v1/inboxes/{inbox['id']}")
    assert state["status"] == "destination_not_allowed"


def test_an_allowed_server_that_is_no_mail_server_is_not_quoted(
        mailbox: Mailbox, listeners: dict[str, Listener]) -> None:
    """When an allowed port answers with another service's banner, the error says the
    server does not speak IMAP (or SMTP) and never repeats what it sent."""
    port = listeners["banner"].port
    for body, code in (
            (mailbox.connect_body(imap={"host": "127.0.0.1", "port": port,
                                        "security": "none"}), "no_imap"),
            (mailbox.connect_body(smtp={"host": "127.0.0.1", "port": port,
                                        "security": "none"}), "no_smtp")):
        response = mailbox.post("/api/v1/inboxes", body)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == code, error
        assert "SSH" not in response.text and "OpenSSH" not in response.text
    assert listeners["banner"].accepted == 2


def test_the_policy_connects_to_the_address_it_checked() -> None:
    """One resolution, checked, and the socket connected to that very address: a name
    that would resolve elsewhere the second time (DNS rebinding) is never asked again."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    answers = iter([[("127.0.0.1", port)], [("10.0.0.1", port)]])
    asked: list[str] = []

    def resolver(host: str, _port: int) -> list[tuple[str, int]]:
        asked.append(host)
        return next(answers)

    policy = Destinations(parse_rules(f"127.0.0.1:{port}"), resolver=resolver)
    from core.inboxes import Endpoint

    sock = policy.connect(Endpoint("rebind.example", port, "none"), "imap", 2)
    try:
        assert sock.getpeername()[:2] == ("127.0.0.1", port)
        assert asked == ["rebind.example"]
    finally:
        sock.close()
        server.close()
    public_only = Destinations(resolver=lambda h, p: [("127.0.0.1", p), ("10.0.0.1", p)])
    with pytest.raises(Exception) as refused:
        public_only.connect(Endpoint("mail.example", 993, "ssl"), "imap", 2)
    assert getattr(refused.value, "code", "") == "destination_not_allowed"


def test_public_means_global_unicast() -> None:
    """is_public: global unicast only, IPv4 carried in IPv6 judged as IPv4."""
    import ipaddress

    for text in ["8.8.8.8", "93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8"]:
        assert is_public(ipaddress.ip_address(text)), text
    for text in [*NON_PUBLIC, "127.0.0.1", "::1", "::ffff:127.0.0.1", "2002:7f00:1::1",
                 "fec0::1", "3fff::1", "192.0.0.8"]:
        assert not is_public(ipaddress.ip_address(text)), text
    with pytest.raises(ValueError):
        parse_rules("127.0.0.1")
    with pytest.raises(ValueError):
        parse_rules("127.0.0.1:99999")
    assert [r.port for r in parse_rules("127.0.0.1:1143, [::1]:*,mail.internal:993")] == [
        1143, None, 993]
