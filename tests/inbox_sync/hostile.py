"""Mail servers that misbehave on purpose, on 127.0.0.1: silent, another service's banner,
a giant literal, an endless line, one byte a second, a FETCH announcing a huge literal.

Each sends from a fixed small buffer (the tests never allocate what they announce) in
loops bounded by a byte count and by ``stop()``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

CHUNK = b"a" * 65536
SSH_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"


class Listener:
    """Accepts on 127.0.0.1:``port`` and runs ``handle(conn, listener)`` in a thread per
    connection; counts connections (all, open now, most open at once)."""

    def __init__(self, handle: Callable[[socket.socket, Listener], None]) -> None:
        self.handle = handle
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = int(self.sock.getsockname()[1])
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.accepted = self.open_now = self.most_open = 0
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _peer = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.open_now += 1
                self.most_open = max(self.most_open, self.open_now)
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handle(conn, self)
        except OSError:
            pass
        finally:
            conn.close()
            with self.lock:
                self.open_now -= 1

    def wait_open(self, count: int, timeout: float = 15) -> None:
        """Until ``count`` connections are open at once (AssertionError after timeout)."""
        deadline = time.monotonic() + timeout
        while self.open_now < count:
            assert time.monotonic() < deadline, f"only {self.open_now} connections open"
            time.sleep(0.02)

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()
        with self.lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


def until_closed(conn: socket.socket, listener: Listener, seconds: float = 120) -> None:
    """Read and drop whatever the client sends until it hangs up (or the test ends)."""
    conn.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while not listener.stopping.is_set() and time.monotonic() < deadline:
        try:
            if not conn.recv(65536):
                return
        except TimeoutError:
            continue


def silent(conn: socket.socket, listener: Listener) -> None:
    """Accepts and says nothing."""
    until_closed(conn, listener)


def banner(conn: socket.socket, listener: Listener) -> None:
    """Another service: its banner first (an SSH server)."""
    conn.sendall(SSH_BANNER)
    until_closed(conn, listener)


def stream(conn: socket.socket, listener: Listener, first: bytes, total: int) -> None:
    """``first``, then ``total`` bytes from CHUNK, until the client hangs up."""
    conn.sendall(first)
    sent = 0
    while sent < total and not listener.stopping.is_set():
        conn.sendall(CHUNK)
        sent += len(CHUNK)
    until_closed(conn, listener, 10)


def giant_greeting_literal(size: int) -> Callable[[socket.socket, Listener], None]:
    """An IMAP greeting announcing a literal of ``size`` bytes, which it then sends."""
    return lambda conn, listener: stream(conn, listener, b"* OK [ALERT] {%d}\r\n" % size, size)


def endless_line(first: bytes, total: int = 64 * 1024 * 1024
                 ) -> Callable[[socket.socket, Listener], None]:
    """``first`` and then a line that does not end (``total`` bytes at most)."""
    return lambda conn, listener: stream(conn, listener, first, total)


def drip(first: bytes, seconds: float = 60) -> Callable[[socket.socket, Listener], None]:
    """``first`` one byte a second, then ``x`` a second, for ``seconds`` at most."""
    def handle(conn: socket.socket, listener: Listener) -> None:
        data = first + b"x" * int(seconds)
        for byte in data[:int(seconds)]:
            if listener.stopping.wait(1):
                return
            conn.sendall(bytes([byte]))
    return handle


def imap_with_giant_fetch(size: int) -> Callable[[socket.socket, Listener], None]:
    """A small IMAP server (login, LIST, EXAMINE, SEARCH) whose FETCH of the header
    blocks announces a literal of ``size`` bytes, and sends it."""
    def handle(conn: socket.socket, listener: Listener) -> None:
        conn.settimeout(10)
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hostile ready\r\n")
        reader = conn.makefile("rb")
        for _ in range(100):  # commands
            line = reader.readline(65536)
            if not line or listener.stopping.is_set():
                return
            tag, _sp, rest = line.rstrip(b"\r\n").partition(b" ")
            command = rest.split(b" ", 2)
            verb = command[0].upper()
            if verb == b"UID" and len(command) > 1:
                verb = b"UID " + command[1].upper()
            if verb == b"LIST":
                conn.sendall(b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
                             b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n')
            elif verb in (b"EXAMINE", b"SELECT"):
                conn.sendall(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n"
                             b"* OK [UIDNEXT 2] ok\r\n")
            elif verb == b"UID SEARCH":
                conn.sendall(b"* SEARCH 1\r\n")
            elif verb == b"UID FETCH":
                stream(conn, listener, b"* 1 FETCH (UID 1 RFC822.SIZE 300 BODY[HEADER] "
                       b"{%d}\r\n" % size, size)
                return
            elif verb == b"LOGOUT":
                conn.sendall(b"* BYE bye\r\n" + tag + b" OK done\r\n")
                return
            elif verb == b"CAPABILITY":
                conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
            conn.sendall(tag + b" OK done\r\n")
    return handle
