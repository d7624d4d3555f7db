"""One IMAP connection, blocking (IMAPClient), with every failure named precisely.

The service runs these methods in a worker thread, one call at a time per connection;
nothing here touches the database. The connection goes only where
``outbound.Destinations`` allows, and what the server may send is bounded per command
(``_imap_wire``): a breach ends the connection as ``remote_protocol_violation``.
Nothing the server sent before a valid greeting (another service's banner) is ever
repeated in an error.
"""

from __future__ import annotations

import asyncio
import functools
import imaplib
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from core.inboxes import Endpoint, InboxError
from core.pipeline import MAX_HEADER_BYTES, MAX_MESSAGE_BYTES
from core.types import InboxErrorCode, MailProtocol, MailSecurity, SaslMechanism
from inbox_sync._imap_wire import BoundedIMAPClient, Budget, Meter, Profile, ProtocolViolation
from inbox_sync.errors import address_error, login_error, response_error, violation_error
from inbox_sync.folders import Folder
from inbox_sync.outbound import Destinations

T = TypeVar("T")



@dataclass(frozen=True)
class Bearer:
    """An OAuth 2.0 access token, sent with SASL ``xoauth2`` or ``oauthbearer``
    (RFC 7628) instead of a password."""

    token: str
    mechanism: SaslMechanism = SaslMechanism.XOAUTH2

    def __repr__(self) -> str:  # never the token in a log line or a traceback
        return f"Bearer({self.mechanism})"


class Login(NamedTuple):
    """Where and as whom to log in."""

    endpoint: Endpoint
    username: str
    secret: str | Bearer  # the password, or an OAuth access token


@dataclass(frozen=True)
class SentCopy:
    """The copy of a sent message in the mailbox's Sent folder: the ``folder`` it was
    appended to, or the ``error`` that stopped it; neither when no copy was made (the
    provider files what it sends itself)."""

    folder: str | None = None
    error: InboxError | None = None

HEADER_ITEM = b"BODY[HEADER]"
BODY_ITEM = b"BODY[]"

# What a server may send: a line, and per command a literal, a whole response and the
# seconds it takes (multiples of the socket time-out). Header blocks are capped as the
# pipeline caps them; a body at the message size limit (bigger ones are never fetched:
# the size in the header FETCH says so first).
LINE_BYTES = 128 * 1024
SMALL_LITERAL = 64 * 1024
SMALL_RESPONSE = 2 * 1024 * 1024
HEADERS_RESPONSE = 64 * 1024 * 1024  # a batch of header blocks (500 at most)
BODIES_RESPONSE = 20 * 1024 * 1024 + MAX_MESSAGE_BYTES  # sync.BODY_BATCH_BYTES + one big
OPENING_BYTES = 1024 * 1024  # greeting, STARTTLS, login, capabilities together
SYNC_BYTES = 4 * 1024 * 1024 * 1024
SYNC_SECONDS = 30 * 60


@dataclass(frozen=True)
class Profiles:
    """The per-command limits of one connection, scaled by its socket time-out."""

    small: Profile
    headers: Profile
    bodies: Profile
    idle: Profile

    @classmethod
    def for_timeout(cls, timeout: float) -> Profiles:
        return cls(Profile(SMALL_LITERAL, SMALL_RESPONSE, timeout),
                   Profile(MAX_HEADER_BYTES + 4, HEADERS_RESPONSE, 4 * timeout),
                   Profile(MAX_MESSAGE_BYTES, BODIES_RESPONSE, 10 * timeout),
                   Profile(SMALL_LITERAL, SMALL_RESPONSE, None))


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    uidnext: int | None
    exists: int
    highest_modseq: int | None


@dataclass(frozen=True)
class Header:
    uid: int
    header: bytes
    size: int


class ImapSession:
    """A logged-in IMAP connection. Every method may raise InboxError."""

    def __init__(self, client: IMAPClient, meter: Meter, profiles: Profiles) -> None:
        self.client = client
        self.meter, self.profiles = meter, profiles
        # Its own thread: a long IDLE must not take a worker of the loop's default pool
        # (pipeline.prepare and every other inbox need those).
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap")
        with self._calls("CAPABILITY"):
            self.capabilities = {c.decode().upper() for c in client.capabilities()}
            if "CONDSTORE" in self.capabilities:
                client.enable("CONDSTORE")

    @classmethod
    def open(cls, endpoint: Endpoint, username: str, password: str | Bearer, *,
             timeout: float = 30, ssl_context: ssl.SSLContext | None = None,
             destinations: Destinations | None = None) -> ImapSession:
        """Connect (only where ``destinations`` allows: by default public addresses on
        the mail ports), secure the connection as asked, log in, within ``timeout``
        seconds and a small byte budget altogether. Raises InboxError."""
        context = ssl_context or ssl.create_default_context()
        policy = destinations or Destinations()
        profiles = Profiles.for_timeout(timeout)
        meter = Meter(LINE_BYTES, profiles.small, timeout)
        meter.budgets.append(Budget("connection opening", OPENING_BYTES,
                                    time.monotonic() + timeout, timeout))
        try:
            client = BoundedIMAPClient(
                endpoint.host, endpoint.port, use_ssl=endpoint.security == MailSecurity.SSL,
                ssl_context=context, timeout=timeout, meter=meter,
                connect=lambda: policy.connect(endpoint, MailProtocol.IMAP, timeout))
        except ProtocolViolation as exc:
            raise violation_error(exc, MailProtocol.IMAP) from None
        except OSError as exc:
            if meter.violation is not None:
                raise violation_error(meter.violation, MailProtocol.IMAP) from None
            raise address_error(exc, endpoint, MailProtocol.IMAP) from None
        except (imaplib.IMAP4.error, IMAPClientError):
            if meter.violation is not None:
                raise violation_error(meter.violation, MailProtocol.IMAP) from None
            # Whatever it sent is not repeated: it may be another service's banner.
            raise InboxError(InboxErrorCode.NO_IMAP, f"{endpoint.host}:{endpoint.port} does "
                             "not speak IMAP (no valid greeting)") from None
        try:
            if endpoint.security == MailSecurity.STARTTLS:
                try:
                    client.starttls(context)
                except (imaplib.IMAP4.error, IMAPClientError):
                    if meter.violation is not None:
                        raise violation_error(meter.violation, MailProtocol.IMAP) from None
                    raise InboxError(InboxErrorCode.TLS_FAILURE, "the IMAP server does not offer "
                                     "STARTTLS") from None
            try:
                if isinstance(password, Bearer) and password.mechanism == SaslMechanism.OAUTHBEARER:
                    client.oauthbearer_login(username, password.token)
                elif isinstance(password, Bearer):
                    client.oauth2_login(username, password.token)
                else:
                    client.login(username, password)
            except LoginError as exc:
                if meter.violation is not None:
                    raise violation_error(meter.violation, MailProtocol.IMAP) from None
                raise login_error(exc, endpoint, token=isinstance(password, Bearer)) from None
            session = cls(client, meter, profiles)
            meter.budgets.clear()
            return session
        except OSError as exc:
            _shutdown(client)
            if meter.violation is not None:
                raise violation_error(meter.violation, MailProtocol.IMAP) from None
            raise address_error(exc, endpoint, MailProtocol.IMAP) from None
        except InboxError:
            _shutdown(client)
            raise
        except (imaplib.IMAP4.error, IMAPClientError):
            _shutdown(client)
            if meter.violation is not None:
                raise violation_error(meter.violation, MailProtocol.IMAP) from None
            raise InboxError(InboxErrorCode.IMAP_ERROR, "IMAP login failed: the connection broke "
                             "off") from None

    @contextmanager
    def _calls(self, what: str, profile: Profile | None = None) -> Iterator[None]:
        """One command (or a few) under ``profile``'s limits (default: small)."""
        self.meter.begin(profile or self.profiles.small)
        try:
            yield
        except Exception as exc:
            violation = self.meter.violation or (
                exc if isinstance(exc, ProtocolViolation) else None)
            if violation is not None:
                with suppress(Exception):
                    self.client.shutdown()  # no LOGOUT: nothing more is read from it
                raise violation_error(violation, MailProtocol.IMAP) from None
            if isinstance(exc, TimeoutError):
                raise InboxError(InboxErrorCode.TIMEOUT, f"the IMAP server did not answer in time "
                                 f"during {what}") from None
            if isinstance(exc, imaplib.IMAP4.abort | OSError):
                raise InboxError(InboxErrorCode.UNREACHABLE,
                                 f"connection lost during {what}") from None
            if isinstance(exc, imaplib.IMAP4.error | IMAPClientError):
                raise response_error(exc, what) from None
            raise

    @contextmanager
    def sync_budget(self, seconds: float = SYNC_SECONDS,
                    bytes_: int = SYNC_BYTES) -> Iterator[None]:
        """Bound everything read during the block (one sync) to ``bytes_`` and
        ``seconds``; commands keep their own limits inside it."""
        budget = Budget("sync", bytes_, time.monotonic() + seconds, seconds)
        self.meter.budgets.append(budget)
        try:
            yield
        finally:
            with suppress(ValueError):
                self.meter.budgets.remove(budget)

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """Run one of these blocking methods on this connection's own thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(call, *args))

    @property
    def has_idle(self) -> bool:
        return "IDLE" in self.capabilities

    def folders(self) -> list[Folder]:
        with self._calls("LIST"):
            listed = self.client.list_folders()
        return [Folder(name if isinstance(name, str) else name.decode(errors="replace"),
                       frozenset((f.decode() if isinstance(f, bytes) else f).lower()
                                 for f in flags))
                for flags, _delim, name in listed]

    def examine(self, name: str) -> FolderState:
        """Select a folder read-only (EXAMINE): nothing we do changes the user's flags."""
        with self._calls(f"opening the folder {name} (EXAMINE)"):
            info = self.client.select_folder(name, readonly=True)
        modseq = info.get(b"HIGHESTMODSEQ")
        return FolderState(int(info[b"UIDVALIDITY"]),
                           int(info[b"UIDNEXT"]) if b"UIDNEXT" in info else None,
                           int(info.get(b"EXISTS", 0)),
                           int(modseq) if modseq is not None else None)

    def max_uid(self) -> int:
        with self._calls("SEARCH"):
            found = self.client.search(["UID", "*"])
        return max(found, default=0)

    def search_range(self, low: int, high: int, since: date | None) -> list[int]:
        """UIDs in ``low:high`` (arrived on or after ``since``), ascending."""
        criteria: list[object] = ["UID", f"{low}:{high}"]
        if since is not None:
            criteria += ["SINCE", since]
        with self._calls("SEARCH"):
            found = self.client.search(criteria)
        return sorted(uid for uid in found if low <= uid <= high)

    def fetch_headers(self, uids: list[int]) -> list[Header]:
        with self._calls("FETCH headers", self.profiles.headers):
            data = self.client.fetch(uids, ["BODY.PEEK[HEADER]", "RFC822.SIZE"])
        return [Header(uid, bytes(item.get(HEADER_ITEM) or b""),
                       int(item.get(b"RFC822.SIZE", 0)))
                for uid, item in sorted(data.items())]

    def fetch_bodies(self, uids: list[int]) -> dict[int, bytes]:
        with self._calls("FETCH bodies", self.profiles.bodies):
            data = self.client.fetch(uids, ["BODY.PEEK[]"])
        return {uid: bytes(item.get(BODY_ITEM) or b"") for uid, item in data.items()}

    def append(self, folder: str, raw: bytes, when: datetime) -> None:
        with self._calls(f"APPEND to {folder}", self.profiles.headers):
            self.client.append(folder, raw, flags=(b"\\Seen",), msg_time=when)

    def wait_for_news(self, seconds: float, interrupted: Callable[[], bool]) -> bool:
        """IDLE on the selected folder up to ``seconds``; True when the server announced
        a change, False on time-out or when ``interrupted()`` turns true (checked every
        second, so another user of this connection waits at most that long)."""
        deadline = time.monotonic() + seconds
        with self._calls("IDLE"):
            self.client.idle()
            self.meter.begin(self.profiles.idle)  # no time limit while waiting
            try:
                while not interrupted() and time.monotonic() < deadline:
                    responses = self.client.idle_check(timeout=1)
                    if any(r[:1] == (b"BYE",) for r in responses):
                        # The server ends the session (a kick, a revoked grant, a
                        # restart); idle_check swallows the EOF that follows.
                        raise imaplib.IMAP4.abort("the server closed the connection (BYE)")
                    if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                        return True
                return False
            finally:
                self.meter.begin(self.profiles.small)
                self.client.idle_done()

    def noop(self) -> None:
        with self._calls("NOOP"):
            self.client.noop()

    def close(self) -> None:
        self.meter.begin(self.profiles.small)
        _shutdown(self.client)
        self._thread.shutdown(wait=False)

    def abort(self) -> None:
        """Close the socket without a LOGOUT (another thread may be using it)."""
        with suppress(Exception):
            self.client.shutdown()
        self._thread.shutdown(wait=False)


def _shutdown(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        with suppress(Exception):
            client.shutdown()


