"""`serve --smtp-proxy-protocol`: what the SMTP port does with connections that are not
a trusted proxy's, through the real port (HAProxy itself: test_two_nodes.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.server import Server

PROXY_LINE = b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 25\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Only 127.0.0.2 is a trusted proxy."""
    running = Server(tmp_path_factory.mktemp("proxy"), extra_args=(
        "--smtp-proxy-protocol", "--smtp-proxy-from", "127.0.0.2")).start()
    yield running
    running.stop()


def connect(server: Server, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.smtp_port), timeout=15,
                                    source_address=(source, 0))


def read_all(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def wait_for_log(server: Server, text: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


def test_a_trusted_proxys_header_opens_the_session(server: Server) -> None:
    """From the trusted proxy, a PROXY header (v1) is followed by the greeting and an
    SMTP session."""
    with connect(server, "127.0.0.2") as sock:
        sock.sendall(PROXY_LINE)
        assert sock.recv(4096).startswith(b"220 ")
        sock.sendall(b"NOOP\r\n")
        assert sock.recv(4096).startswith(b"250")


def test_a_header_from_anyone_else_is_refused(server: Server) -> None:
    """A PROXY header from an address that is not a trusted proxy (it could name any
    client) closes the connection without a greeting, and says so in the log."""
    with connect(server, "127.0.0.5") as sock:
        sock.sendall(PROXY_LINE)
        assert read_all(sock) == b""
    wait_for_log(server, "SMTP connection from 127.0.0.5 dropped: it sent a PROXY protocol "
                         "header but is not a trusted proxy")


def test_smtp_without_a_header_is_dropped(server: Server) -> None:
    """A client speaking SMTP at once, or saying nothing, gets no greeting: the
    connection is closed (at once; after 5 s of silence) with a log line saying why."""
    with connect(server, "127.0.0.2") as talker, connect(server, "127.0.0.2") as silent:
        talker.sendall(b"EHLO client.test\r\n")
        assert read_all(talker) == b""
        started = time.monotonic()
        assert read_all(silent) == b""
        assert 4 < time.monotonic() - started < 12
    wait_for_log(server, "dropped: not a valid PROXY protocol header")
    wait_for_log(server, "dropped: no PROXY protocol header within 5 s")
