"""DNS for sender authentication: dnspython with timeouts and a TTL-respecting cache.

The resolver is always configured explicitly (``configure=False``): nameservers and port
come from :class:`DnsConfig`, never from ``/etc/resolv.conf`` behind the caller's back.
:meth:`DnsConfig.system` is the one place that reads the machine's configuration, for
production. A lookup either answers (possibly with nothing: NXDOMAIN and NODATA are both
"no records") or raises :class:`DnsTemporaryError`: a timeout or a SERVFAIL is never
mistaken for "no record".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from core.errors import CoreError


class DnsTemporaryError(CoreError):
    """A lookup timed out or the server failed (SERVFAIL, refused): try again later."""

    code = "dns_temporary"


@dataclass(frozen=True)
class Nameserver:
    address: str
    port: int = 53


@dataclass(frozen=True)
class DnsConfig:
    """Where and how long to ask. ``timeout`` bounds one query to one server,
    ``lifetime`` a whole lookup (retries included). ``stub_zones`` sends the names under a
    domain to other servers (split horizon; the tests use it for a silent server)."""

    nameservers: tuple[Nameserver, ...]
    timeout: float = 2.0
    lifetime: float = 4.0
    cache_size: int = 2048
    stub_zones: Mapping[str, tuple[Nameserver, ...]] = field(default_factory=dict)

    @classmethod
    def system(cls, *, timeout: float = 2.0, lifetime: float = 4.0) -> DnsConfig:
        """The machine's resolvers from ``/etc/resolv.conf`` (production only)."""
        system = dns.resolver.Resolver(configure=True)
        return cls(nameservers=tuple(Nameserver(str(address), system.port)
                                     for address in system.nameservers),
                   timeout=timeout, lifetime=lifetime)


class Resolver:
    """Thread-safe lookups (dnspython's resolver and cache lock as they go); shared by
    every check of every message so that the cache is too."""

    def __init__(self, config: DnsConfig) -> None:
        if not config.nameservers:
            raise ValueError("a DNS configuration needs at least one nameserver")
        self.config = config
        self.cache = dns.resolver.LRUCache(config.cache_size)
        self._default = self._resolver(config.nameservers)
        # Longest suffix first, so that a stub zone's own subzones win.
        self._stubs = sorted(((dns.name.from_text(zone), self._resolver(servers))
                              for zone, servers in config.stub_zones.items()),
                             key=lambda item: len(item[0]), reverse=True)

    def _resolver(self, servers: tuple[Nameserver, ...]) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(server.address, server.port)
                                for server in servers]
        resolver.timeout = self.config.timeout
        resolver.lifetime = self.config.lifetime
        resolver.cache = self.cache
        # A SERVFAIL is a failure of that server, not an answer: let dnspython try the next.
        resolver.retry_servfail = False
        return resolver

    def _route(self, name: dns.name.Name) -> dns.resolver.Resolver:
        for zone, resolver in self._stubs:
            if name.is_subdomain(zone):
                return resolver
        return self._default

    def lookup(self, name: str, rdtype: str) -> list[dns.rdata.Rdata]:
        """The records of ``rdtype`` at ``name`` (CNAMEs followed); ``[]`` when the name or
        the type does not exist. Raises :class:`DnsTemporaryError` on timeouts and server
        failures, and for a name that is not a valid DNS name raises nothing: ``[]``."""
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException:
            return []
        try:
            answer = self._route(qname).resolve(qname, dns.rdatatype.from_text(rdtype),
                                                search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.YXDOMAIN):
            return []
        except dns.resolver.LifetimeTimeout as error:
            raise DnsTemporaryError(f"DNS lookup of {name} {rdtype} timed out") from error
        except dns.resolver.NoNameservers as error:
            raise DnsTemporaryError(f"DNS lookup of {name} {rdtype} failed "
                                    "(the server answered with an error)") from error
        except dns.exception.DNSException as error:
            raise DnsTemporaryError(f"DNS lookup of {name} {rdtype} failed: {error}") from error
        return list(answer)

    def txt(self, name: str) -> list[bytes]:
        """Each TXT record at ``name`` as one byte string (its strings concatenated, as
        SPF, DKIM and DMARC all say)."""
        return [b"".join(record.strings)  # type: ignore[attr-defined]
                for record in self.lookup(name, "TXT")]
