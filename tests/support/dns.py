"""A real DNS server for the sender-authentication tests: NSD on a loopback port.

``scripts/dns-for-tests.sh`` installs NSD when missing, writes the test zone (SPF, DKIM
keys made with openssl, DMARC records) and starts the server; this module runs it once and
stops it by PID. Beside it, a UDP socket that never answers stands for a domain whose
servers are unreachable (the stub zone ``slow.test``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.sender_auth import DnsConfig, Nameserver

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "dns-for-tests.sh"


@dataclass(frozen=True)
class DnsServer:
    port: int
    silent_port: int
    directory: Path
    pid: int

    def key(self, domain: str, selector: str = "s1") -> bytes:
        """The private DKIM key (PEM) whose public half the zone publishes."""
        return (self.directory / "keys" / f"{selector}.{domain}.pem").read_bytes()

    def config(self, *, timeout: float = 0.25, lifetime: float = 0.5) -> DnsConfig:
        return DnsConfig(nameservers=(Nameserver("127.0.0.1", self.port),),
                         timeout=timeout, lifetime=lifetime,
                         stub_zones={"slow.test": (Nameserver("127.0.0.1", self.silent_port),)})


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # The server is not our child (the script started it): it may linger as a zombie.
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


@contextmanager
def running_dns() -> Iterator[DnsServer]:
    directory = Path(tempfile.mkdtemp(prefix="inboxlog-dns-"))
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))  # bound and never read: queries to it time out
    result = subprocess.run([str(SCRIPT), str(directory)], capture_output=True, text=True,
                            check=False, timeout=600)
    if result.returncode != 0:
        silent.close()
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"could not start the test DNS server:\n{result.stderr}")
    pid = int((directory / "nsd.pid").read_text())
    try:
        yield DnsServer(port=int(result.stdout.split()[-1]), silent_port=silent.getsockname()[1],
                      directory=directory, pid=pid)
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        silent.close()
        shutil.rmtree(directory, ignore_errors=True)
