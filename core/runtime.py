"""What the adapters share at run time: settings, the database and the blob store."""

from __future__ import annotations

import functools
import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import RelayNotConfigured
from core.outbound_mail import OutboundMail, SmtpRelay
from core.sender_auth import DnsConfig, Nameserver, SenderAuthConfig, SenderAuthenticator
from core.storage.blobs import BlobStore, LocalBlobStore
from core.storage.db import Database, sqlite_url

# Threads of the sender-authentication checks: a check can hold one for seconds on a
# dead domain, so they never share asyncio's default executor with parsing.
SENDER_AUTH_THREADS = 16


@functools.lru_cache(maxsize=16)
def _networks(texts: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``trusted_networks`` parsed once (each message's sender check asks)."""
    return tuple(ipaddress.ip_network(text, strict=False) for text in texts)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    db_url: str = ""  # empty: SQLite under data_dir
    bcc_domain: str = "bcc.localhost"
    base_url: str = "http://127.0.0.1:8025"
    secret_key: str = ""
    smtp_hostname: str = field(default_factory=socket.getfqdn)
    # Sender authentication (docs/sender-auth.md). Clients in ``trusted_networks`` are
    # not checked (local submission), or are the upstream MTA whose
    # ``Authentication-Results`` under ``trusted_authserv_ids`` count.
    trusted_networks: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    trusted_authserv_ids: tuple[str, ...] = ()
    trusted_arc_sealers: tuple[str, ...] = ()
    dns_servers: tuple[str, ...] = ()  # HOST[:PORT]; empty: the machine's resolvers
    dns_timeout: float = 2.0  # one query; a lookup gets twice that
    dns_stub_zones: tuple[str, ...] = ()  # ZONE=HOST[:PORT]
    # The operator's outbound SMTP relay (core.outbound_mail): "" sends no mail.
    smtp_relay: str = ""
    mail_from: str = ""  # envelope and From of that mail; "": inboxlog@<bcc_domain>
    # Where blobs live: "" is <data_dir>/blobs; "s3://bucket/prefix" an S3-compatible
    # bucket, reached at ``s3_endpoint_url`` ("": AWS_ENDPOINT_URL, else AWS itself).
    blob_store: str = ""
    s3_endpoint_url: str = ""

    def open_blob_store(self) -> BlobStore:
        if not self.blob_store:
            return LocalBlobStore(self.data_dir / "blobs")
        from core.storage._s3 import S3BlobStore  # boto3 is imported only when it is used

        return S3BlobStore(self.blob_store, self.data_dir / "spool",
                           endpoint_url=self.s3_endpoint_url)

    def is_trusted_client(self, address: str | None) -> bool:
        """Whether an SMTP client address is on an operator-trusted network."""
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in _networks(self.trusted_networks))

    def dns_config(self) -> DnsConfig:
        lifetime = 2 * self.dns_timeout
        zones = {zone: (parse_nameserver(server),)
                 for zone, _, server in (z.partition("=") for z in self.dns_stub_zones)}
        if not self.dns_servers:
            system = DnsConfig.system(timeout=self.dns_timeout, lifetime=lifetime)
            return DnsConfig(system.nameservers, self.dns_timeout, lifetime, stub_zones=zones)
        return DnsConfig(tuple(parse_nameserver(s) for s in self.dns_servers),
                         self.dns_timeout, lifetime, stub_zones=zones)

    @property
    def outbound_mail(self) -> OutboundMail:
        """The relay's sender; RelayNotConfigured without ``--smtp-relay``."""
        if not self.smtp_relay:
            raise RelayNotConfigured("this server sends no mail: its operator has not "
                                     "configured an SMTP relay (serve --smtp-relay)")
        return OutboundMail(SmtpRelay.parse(self.smtp_relay),
                            self.mail_from or f"inboxlog@{self.bcc_domain}")

    @property
    def database_url(self) -> str:
        return self.db_url or sqlite_url(self.data_dir / "inboxlog.db")


class Runtime:
    """One inboxlog instance's resources; create once per process, ``close`` at exit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.blobs = settings.open_blob_store()
        self._sender_auth_threads: ThreadPoolExecutor | None = None

    @functools.cached_property
    def sender_auth(self) -> SenderAuthenticator:
        """Made on first use: a command that never checks mail never reads the DNS
        configuration."""
        settings = self.settings
        self._sender_auth_threads = ThreadPoolExecutor(
            SENDER_AUTH_THREADS, thread_name_prefix="sender-auth")
        return SenderAuthenticator(SenderAuthConfig(
            dns=settings.dns_config(),
            trusted_authserv_ids=frozenset(settings.trusted_authserv_ids),
            trusted_arc_sealers=frozenset(settings.trusted_arc_sealers),
        ), executor=self._sender_auth_threads)

    async def close(self) -> None:
        if self._sender_auth_threads is not None:
            self._sender_auth_threads.shutdown(wait=False, cancel_futures=True)
        await self.db.dispose()


def parse_nameserver(text: str) -> Nameserver:
    """``HOST``, ``HOST:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address; ValueError else."""
    text = text.strip()
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    ipaddress.ip_address(host)  # dnspython asks addresses, not names
    number = int(port) if port else 53
    if not 0 < number < 65536:
        raise ValueError(f"not a port: {port}")
    return Nameserver(host, number)
