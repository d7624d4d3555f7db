"""One IMAP connection, blocking (IMAPClient), with every failure named precisely.

The service runs these methods in a worker thread, one call at a time per connection;
nothing here touches the database.
"""

from __future__ import annotations

import asyncio
import functools
import imaplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from core.inboxes import Endpoint, InboxError
from inbox_sync.errors import address_error, error_text, login_error, response_error
from inbox_sync.folders import Folder

T = TypeVar("T")

# Where and as whom to log in: (server, username, password).
Login = tuple[Endpoint, str, str]

HEADER_ITEM = b"BODY[HEADER]"
BODY_ITEM = b"BODY[]"


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


def _port_open(endpoint: Endpoint, timeout: float) -> bool:
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout):
            return True
    except OSError:
        return False


class ImapSession:
    """A logged-in IMAP connection. Every method may raise InboxError."""

    def __init__(self, client: IMAPClient) -> None:
        self.client = client
        # Its own thread: a long IDLE must not take a worker of the loop's default pool
        # (pipeline.prepare and every other inbox need those).
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap")
        self.capabilities = {c.decode().upper() for c in client.capabilities()}
        if "CONDSTORE" in self.capabilities:
            client.enable("CONDSTORE")

    @classmethod
    def open(cls, endpoint: Endpoint, username: str, password: str, *,
             timeout: float = 30, ssl_context: ssl.SSLContext | None = None) -> ImapSession:
        """Connect, secure the connection as asked, log in. Raises InboxError."""
        context = ssl_context or ssl.create_default_context()
        try:
            client = IMAPClient(endpoint.host, endpoint.port, ssl=endpoint.security == "ssl",
                                ssl_context=context, timeout=timeout)
        except OSError as exc:
            if isinstance(exc, TimeoutError) and _port_open(endpoint, min(timeout, 5)):
                raise InboxError("no_imap", f"{endpoint.host}:{endpoint.port} accepts "
                                 "connections but sends no IMAP greeting") from None
            raise address_error(exc, endpoint, "imap") from None
        except (imaplib.IMAP4.error, IMAPClientError) as exc:
            raise InboxError("no_imap", f"{endpoint.host}:{endpoint.port} does not speak "
                             f"IMAP: {error_text(exc)[:200]}") from None
        try:
            if endpoint.security == "starttls":
                try:
                    client.starttls(context)
                except (imaplib.IMAP4.error, IMAPClientError) as exc:
                    raise InboxError("tls_failure", "the IMAP server does not offer "
                                     f"STARTTLS: {error_text(exc)}") from None
            try:
                client.login(username, password)
            except LoginError as exc:
                raise login_error(exc, endpoint) from None
            return cls(client)
        except OSError as exc:
            _shutdown(client)
            raise address_error(exc, endpoint, "imap") from None
        except InboxError:
            _shutdown(client)
            raise
        except (imaplib.IMAP4.error, IMAPClientError) as exc:
            _shutdown(client)
            raise InboxError("imap_error", f"IMAP login failed: {error_text(exc)}") from None

    @contextmanager
    def _calls(self, what: str) -> Iterator[None]:
        try:
            yield
        except imaplib.IMAP4.abort as exc:
            raise InboxError("unreachable",
                             f"connection lost during {what}: {error_text(exc)}") from None
        except OSError as exc:
            raise InboxError("unreachable", f"connection lost during {what}: {exc}") from None
        except (imaplib.IMAP4.error, IMAPClientError) as exc:
            raise response_error(exc, what) from None

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
        with self._calls("FETCH headers"):
            data = self.client.fetch(uids, ["BODY.PEEK[HEADER]", "RFC822.SIZE"])
        return [Header(uid, bytes(item.get(HEADER_ITEM) or b""),
                       int(item.get(b"RFC822.SIZE", 0)))
                for uid, item in sorted(data.items())]

    def fetch_bodies(self, uids: list[int]) -> dict[int, bytes]:
        with self._calls("FETCH bodies"):
            data = self.client.fetch(uids, ["BODY.PEEK[]"])
        return {uid: bytes(item.get(BODY_ITEM) or b"") for uid, item in data.items()}

    def append(self, folder: str, raw: bytes, when: datetime) -> None:
        with self._calls(f"APPEND to {folder}"):
            self.client.append(folder, raw, flags=(b"\\Seen",), msg_time=when)

    def wait_for_news(self, seconds: float, interrupted: Callable[[], bool]) -> bool:
        """IDLE on the selected folder up to ``seconds``; True when the server announced
        a change, False on time-out or when ``interrupted()`` turns true (checked every
        second, so another user of this connection waits at most that long)."""
        deadline = time.monotonic() + seconds
        with self._calls("IDLE"):
            self.client.idle()
            try:
                while not interrupted() and time.monotonic() < deadline:
                    responses = self.client.idle_check(timeout=1)
                    if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                        return True
                return False
            finally:
                self.client.idle_done()

    def noop(self) -> None:
        with self._calls("NOOP"):
            self.client.noop()

    def close(self) -> None:
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


