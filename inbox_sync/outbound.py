"""Where inboxlog may connect on a user's behalf: public addresses and mail ports only,
unless the operator allows more (``--allow-mail-hosts``).

A user chooses the IMAP and SMTP servers of their inbox; without this check they could
make the server probe the hosting network (loopback, the cloud metadata address, the
database). The check is made on the addresses a name resolves to, and the socket is then
connected to one of exactly those addresses (TLS still verifies the certificate against
the name): a second lookup that answers differently (DNS rebinding) never happens.

An address is public when ``ipaddress`` calls it global and it is neither multicast nor
reserved; an IPv6 address that carries an IPv4 one (``::ffff:a.b.c.d``, NAT64
``64:ff9b::/96``, 6to4, Teredo) must carry a public one. That refuses loopback in every
spelling (``127.1``, ``2130706433`` and ``0x7f000001`` resolve to 127.0.0.1 first),
private, link-local, CGNAT (100.64/10), documentation, benchmarking and reserved ranges,
and their IPv6 equivalents (``::1``, ``fc00::/7``, ``fe80::/10``).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.inboxes import Endpoint, InboxError
from core.types import InboxErrorCode, MailProtocol

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IMAP 143/993, SMTP 25/465/587 and the common alternative submission port 2525.
MAIL_PORTS = frozenset({25, 143, 465, 587, 993, 2525})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Not global, though the ipaddress of Python 3.11 calls them so: IETF protocol
# assignments (192.0.0.0/24), IPv6 site-local (fec0::/10, deprecated but still routed
# inside some networks) and the IPv6 documentation range of RFC 9637 (3fff::/20).
_ALSO_NOT_GLOBAL = (ipaddress.IPv4Network("192.0.0.0/24"), ipaddress.IPv6Network("fec0::/10"),
                    ipaddress.IPv6Network("3fff::/20"))
# Addresses of one name tried in turn before giving up (all within one time-out).
MAX_ADDRESSES = 4

# (host, port) -> [(address, port)], as socket.getaddrinfo would answer; a test seam.
Resolver = Callable[[str, int], list[tuple[str, int]]]


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a public unicast address (see the module docstring)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = (address.ipv4_mapped or address.sixtofour
                    or (address.teredo[1] if address.teredo else None)
                    or (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
                        if address in _NAT64 else None))
        if embedded is not None:
            return is_public(embedded)
    if any(address in network for network in _ALSO_NOT_GLOBAL
           if network.version == address.version):
        return False
    return address.is_global and not address.is_multicast and not address.is_reserved


@dataclass(frozen=True)
class Rule:
    """One ``HOST:PORT`` of the operator's allow-list: HOST an address, a network
    (``10.0.0.0/8``) or a name (matched as given, case-insensitively); PORT a number or
    ``*``."""

    network: IPNetwork | None
    name: str | None
    port: int | None  # None: any port

    def matches(self, host: str, address: IPAddress | None, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.name is not None:
            return host.lower().rstrip(".") == self.name
        return address is not None and self.network is not None and address in self.network

    def may_match_port(self, port: int) -> bool:
        return self.port is None or self.port == port


def parse_rules(text: str) -> tuple[Rule, ...]:
    """``127.0.0.1:1143,127.0.0.1:*,[::1]:993,mail.internal:*`` as rules; ValueError
    names the entry that is not one."""
    rules: list[Rule] = []
    for raw in text.replace(" ", ",").split(","):
        entry = raw.strip()
        if not entry:
            continue
        host, sep, port_text = entry.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{entry!r}: expected HOST:PORT or HOST:*")
        if port_text == "*":
            port = None
        elif port_text.isdigit() and 1 <= int(port_text) <= 65535:
            port = int(port_text)
        else:
            raise ValueError(f"{entry!r}: the port must be 1-65535 or *")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            rules.append(Rule(ipaddress.ip_network(host, strict=False), None, port))
        except ValueError:
            if not host.replace("-", "").replace(".", "").isalnum():
                raise ValueError(f"{entry!r}: not an address, network or host name") from None
            rules.append(Rule(None, host.lower().rstrip("."), port))
    return tuple(rules)


def _system_resolver(host: str, port: int) -> list[tuple[str, int]]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [(str(info[4][0]), port) for info in infos]


def refused(endpoint: Endpoint, protocol: MailProtocol) -> InboxError:
    """The one answer for a destination the policy refuses: the same whether anything
    listens there or not (nothing was sent to find out)."""
    ports = ", ".join(str(p) for p in sorted(MAIL_PORTS))
    return InboxError(
        InboxErrorCode.DESTINATION_NOT_ALLOWED,
        f"the {protocol.upper()} server {endpoint.host}:{endpoint.port} is not an allowed "
        f"destination: inboxlog connects only to public addresses on the mail ports "
        f"({ports}), unless the operator allows more", protocol=protocol)


class Destinations:
    """The policy: which (host, port) a connection may go to, decided on the resolved
    addresses. ``connect`` is blocking (DNS, TCP): run it on the network executor."""

    def __init__(self, rules: Iterable[Rule] = (), resolver: Resolver | None = None, *,
                 ports: frozenset[int] = MAIL_PORTS) -> None:
        self.rules = tuple(rules)
        self.ports = ports  # allowed on public addresses without a rule
        self._resolve = resolver or _system_resolver

    def for_ports(self, ports: frozenset[int]) -> Destinations:
        """The same rules and resolver, with other ports open on public addresses (the
        authorization servers' HTTPS)."""
        return Destinations(self.rules, self._resolve, ports=ports)

    @classmethod
    def parse(cls, text: str) -> Destinations:
        return cls(parse_rules(text))

    def _allowed(self, host: str, address: IPAddress, port: int) -> bool:
        if any(rule.matches(host, address, port) for rule in self.rules):
            return True
        return port in self.ports and is_public(address)

    def addresses(self, endpoint: Endpoint, protocol: MailProtocol) -> list[str]:
        """The addresses of ``endpoint`` a connection may go to, resolved once, in the
        resolver's order. Raises InboxError ``destination_not_allowed`` when there is
        none (a port no rule allows is refused before any lookup), ``name_not_found``
        when the name does not resolve."""
        host, port = endpoint.host.strip(), endpoint.port
        if port not in self.ports and not any(r.may_match_port(port) for r in self.rules):
            raise refused(endpoint, protocol)
        try:
            resolved = self._resolve(host, port)
        except UnicodeError:
            raise refused(endpoint, protocol) from None
        except socket.gaierror:
            raise InboxError(InboxErrorCode.NAME_NOT_FOUND,
                             f"{protocol.upper()} server name not found: {host}",
                             protocol=protocol) from None
        allowed: list[str] = []
        for text, _port in resolved:
            try:
                address = ipaddress.ip_address(text.partition("%")[0])
            except ValueError:
                continue
            if self._allowed(host, address, port) and text not in allowed:
                allowed.append(text)
        if not allowed:
            raise refused(endpoint, protocol)
        return allowed

    def connect(self, endpoint: Endpoint, protocol: MailProtocol, timeout: float) -> socket.socket:
        """A TCP socket connected to an allowed address of ``endpoint``: the first
        ``MAX_ADDRESSES`` tried in order, all within ``timeout`` together. Raises
        InboxError for a refused destination or an unknown name, OSError (TimeoutError
        when the time ran out) when no allowed address could be reached."""
        deadline = time.monotonic() + timeout
        last: OSError = TimeoutError("no address answered in time")
        for address in self.addresses(endpoint, protocol)[:MAX_ADDRESSES]:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(left)
                sock.connect((address, endpoint.port))
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        raise last
