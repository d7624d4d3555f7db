"""The IMAP connection under IMAPClient, bounded: what a remote server may send is
limited before it is read.

imaplib reads a literal (``{800000000}``) whole, whatever the size it announces, and a
line up to 1 MB; a server dripping one byte a second never trips a socket time-out.
Here every read goes through a ``Meter`` that knows the current command's limits
(``Profile``: the largest literal, the bytes of the whole response, the seconds it may
take), the connection's and the sync's budgets. A literal over the limit is refused on
its announcement, before a byte of it is read. A breach raises ``ProtocolViolation``
(an ``imaplib.IMAP4.abort``: the connection is unusable) and is kept on ``violation``,
since imaplib rewraps errors raised inside a command into a plain ``abort``.

The socket is connected by ``outbound.Destinations`` to an address it checked; TLS
(implicit or STARTTLS) verifies the certificate against the name, not the address.
"""

from __future__ import annotations

import imaplib
import io
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient


@dataclass(frozen=True)
class Profile:
    """What one command's response may be."""

    literal: int  # the largest literal it may carry, in bytes
    response: int  # all its lines and literals together, in bytes
    seconds: float | None  # the longest it may take (None: no limit, as in IDLE)


@dataclass
class Budget:
    """Bytes and seconds for a span of several commands (a connection's opening, a
    sync); ``name`` says which in a violation."""

    name: str
    bytes: int
    deadline: float  # time.monotonic()
    seconds: float
    used: int = 0


class ProtocolViolation(imaplib.IMAP4.abort):
    """The server broke a limit; ``limit`` names it (``literal``, ``line``, ``response``,
    ``time``, ``connection bytes``, ``sync bytes``, ``sync time``...)."""

    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(detail)
        self.limit = limit
        self.detail = detail


class Meter:
    """The limits every read is checked against, and the bytes counted so far."""

    def __init__(self, line_limit: int, profile: Profile, read_timeout: float) -> None:
        self.line_limit = line_limit
        self.read_timeout = read_timeout
        self.budgets: list[Budget] = []
        self.violation: ProtocolViolation | None = None
        self.begin(profile)

    def begin(self, profile: Profile) -> None:
        """Start counting a new command's response under ``profile``."""
        self.profile = profile
        self.response_bytes = 0
        self.started = time.monotonic()

    def fail(self, limit: str, detail: str) -> ProtocolViolation:
        self.violation = ProtocolViolation(limit, detail)
        return self.violation

    def timeout_for_read(self) -> float | None:
        """The socket time-out of the next read; raises when a deadline has passed.
        None when no deadline applies (the socket's own setting stays, e.g. IDLE's
        non-blocking polls)."""
        now = time.monotonic()
        left: list[float] = []
        for budget in self.budgets:
            if now >= budget.deadline:
                raise self.fail(f"{budget.name} time", f"the {budget.name} took longer "
                                f"than its budget of {budget.seconds:.0f} s")
            left.append(budget.deadline - now)
        if self.profile.seconds is not None:
            command_left = self.started + self.profile.seconds - now
            if command_left <= 0:
                self._out_of_time()
            left.append(command_left)
        if not left:
            return None
        return max(0.001, min([self.read_timeout, *left]))

    def _out_of_time(self) -> None:
        seconds = self.profile.seconds or 0
        if self.response_bytes:
            raise self.fail("time", f"one response took longer than {seconds:.0f} s "
                            "(the server sends too slowly)")
        raise TimeoutError(f"no response in {seconds:.0f} s")

    def after_timeout(self) -> None:
        """A read timed out: a slow server breaks the time limit, a silent one times out."""
        if self.profile.seconds is not None and (
                time.monotonic() >= self.started + self.profile.seconds):
            self._out_of_time()
        for budget in self.budgets:
            if time.monotonic() >= budget.deadline:
                raise self.fail(f"{budget.name} time", f"the {budget.name} took longer "
                                f"than its budget of {budget.seconds:.0f} s")

    def count(self, n: int) -> None:
        self.response_bytes += n
        if self.response_bytes > self.profile.response:
            raise self.fail("response", f"one response exceeded {self.profile.response} "
                            "bytes")
        for budget in self.budgets:
            budget.used += n
            if budget.used > budget.bytes:
                raise self.fail(f"{budget.name} bytes", f"the {budget.name} exceeded its "
                                f"budget of {budget.bytes} bytes")

    def literal(self, size: int) -> None:
        if size > self.profile.literal:
            raise self.fail("literal", f"the server announced a literal of {size} bytes; "
                            f"at most {self.profile.literal} are accepted here")


class _MeteredSocketReader(io.RawIOBase):
    """``socket.makefile('rb')``'s raw layer, every read metered (and, like SocketIO,
    None on a would-block of a non-blocking socket)."""

    def __init__(self, sock: socket.socket, meter: Meter) -> None:
        super().__init__()
        self.sock, self.meter = sock, meter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        timeout = self.meter.timeout_for_read()
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            n = self.sock.recv_into(buffer)
        except TimeoutError:
            self.meter.after_timeout()
            raise
        except BlockingIOError:
            return None
        self.meter.count(n)
        return n


class BoundedIMAP4(imaplib.IMAP4):
    """imaplib's IMAP4 on a checked socket, every read metered."""

    def __init__(self, host: str, port: int, *, connect: Callable[[], socket.socket],
                 tls: ssl.SSLContext | None, meter: Meter, timeout: float) -> None:
        self._connect_socket, self._tls, self.meter = connect, tls, meter
        super().__init__(host, port, timeout)

    # imaplib assigns ``file`` in open() and again after STARTTLS (from the new TLS
    # socket): either way the reader is rebuilt, metered, on the current socket.
    @property
    def file(self) -> Any:
        return self._file

    @file.setter
    def file(self, _unmetered: object) -> None:
        self._file = io.BufferedReader(_MeteredSocketReader(self.sock, self.meter), 65536)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = self._connect_socket()
        if self._tls is not None:
            sock.settimeout(timeout)
            sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        return sock

    def read(self, size: int) -> bytes:
        self.meter.literal(size)
        return self._file.read(size)

    def readline(self) -> bytes:
        line = self._file.readline(self.meter.line_limit + 1)
        if len(line) > self.meter.line_limit:
            raise self.meter.fail("line", f"a response line exceeded "
                                  f"{self.meter.line_limit} bytes")
        return line


class BoundedIMAPClient(IMAPClient):  # type: ignore[misc]
    """IMAPClient over ``BoundedIMAP4``."""

    def __init__(self, host: str, port: int, *, use_ssl: bool, ssl_context: ssl.SSLContext,
                 connect: Callable[[], socket.socket], meter: Meter, timeout: float) -> None:
        self._connect_socket, self.meter = connect, meter
        super().__init__(host, port, ssl=use_ssl, ssl_context=ssl_context, timeout=timeout)

    def _create_IMAP4(self) -> BoundedIMAP4:
        return BoundedIMAP4(self.host, self.port, connect=self._connect_socket,
                            tls=self.ssl_context if self.ssl else None, meter=self.meter,
                            timeout=self._timeout.connect)
