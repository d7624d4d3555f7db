"""Tests send traffic to loopback only: an audit hook that refuses any other connect.

The outbound-safety tests ask inboxlog to connect to private and public addresses and
check that it refuses. Should that check ever regress, the connection must still not
leave the machine: this hook, installed in the pytest process and in every `inboxlog
serve` the tests start (``python -m tests.support.loopback_only serve ...``), makes a
``connect``/``sendto`` to anything but a loopback address or a Unix socket fail with
``PermissionError`` before a packet is sent. Name lookups are left to the system.

uvloop (the loop ``serve`` runs on) connects and sends through libuv's own sockets,
which raise no audit event: its ``create_connection`` and ``create_datagram_endpoint``
are wrapped to check every address the host resolves to first.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

_GUARDED = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
_installed = False


class EgressRefused(PermissionError):
    """A test tried to reach an address off this machine."""


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths (str/bytes), abstract sockets
        return True
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host in ("localhost", ""):
        return True
    try:
        ip = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False  # a name: Python's connect() only takes resolved addresses here
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in _GUARDED:
        return
    address = args[1]  # (self, address) for all three events
    if address is None or _is_loopback(address):
        return
    raise EgressRefused(f"tests reach loopback only; refused {event} to {address!r}")


async def _refuse_off_loopback(loop: Any, host: Any, port: Any, kind: int) -> None:
    if host is None:
        return
    for *_, address in await loop.getaddrinfo(host, port, type=kind):
        if not _is_loopback(address):
            raise EgressRefused(f"tests reach loopback only; refused {host!r} ({address!r})")


def _guard_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    connect, datagram = uvloop.Loop.create_connection, uvloop.Loop.create_datagram_endpoint

    async def create_connection(self: Any, factory: Any, host: Any = None, port: Any = None,
                                *args: Any, **kwargs: Any) -> Any:
        await _refuse_off_loopback(self, host, port, socket.SOCK_STREAM)
        return await connect(self, factory, host, port, *args, **kwargs)

    async def create_datagram_endpoint(self: Any, factory: Any, local_addr: Any = None,
                                       remote_addr: Any = None, **kwargs: Any) -> Any:
        if remote_addr is not None:
            host, port = remote_addr[:2]
            await _refuse_off_loopback(self, host, port, socket.SOCK_DGRAM)
        return await datagram(self, factory, local_addr, remote_addr, **kwargs)

    setattr(uvloop.Loop, "create_connection", create_connection)  # noqa: B010
    setattr(uvloop.Loop, "create_datagram_endpoint", create_datagram_endpoint)  # noqa: B010


def install() -> None:
    """Install the hook in this process (idempotent; audit hooks cannot be removed)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _guard_uvloop()
        _installed = True


if __name__ == "__main__":
    install()
    import os
    from pathlib import Path

    from extension_api.tracking_clock import file_clock, use_clock
    from inboxlog.cli import main

    if clock_file := os.environ.get("INBOXLOG_TESTS_CLOCK_FILE"):
        use_clock(file_clock(Path(clock_file)))  # see tests.support.server.ClockedServer

    sys.argv[0] = "inboxlog"
    main()
