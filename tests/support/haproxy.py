"""Several `inboxlog serve` nodes on one PostgreSQL database behind a real HAProxy
(Debian's, installed by scripts/haproxy-for-tests.sh): SMTP in tcp mode with the PROXY
protocol (v2), HTTP with X-Forwarded-For, both balanced round-robin.

    with Cluster(tmp_path, db_url) as cluster:          # 2 nodes, HAProxy in front
        account = cluster.new_portal()
        with cluster.smtp() as smtp: ...               # from OUTSIDE_CLIENT (127.0.0.5)
        with cluster.api(account.user_token) as api: ...
        cluster.nodes[1].stop(); cluster.served("smtp")   # sessions per node

Outside clients are played by binding their end of the connection to another loopback
address (``source=``): HAProxy sees 127.0.0.5, the nodes see HAProxy (127.0.0.1) and
learn the client from the PROXY header or X-Forwarded-For. Only 127.0.0.1 is a trusted
network by default, so mail from an outside client claiming a user is sender-checked:
pass ``extra_args=TRUST_OUTSIDE_CLIENT`` to make it local submission instead.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import smtplib
import socket
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import httpx

from tests.support.server import PortalAccount, Server, free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
PROXY = "127.0.0.1"  # where HAProxy's connections to the nodes come from
OUTSIDE_CLIENT = "127.0.0.5"  # an outside client, as HAProxy sees it
OTHER_CLIENT = "127.0.0.6"  # a second one
# What every node behind the proxy is started with: the proxy's PROXY header and
# X-Forwarded-For are believed, from it only.
NODE_ARGS = ("--smtp-proxy-protocol", "--smtp-proxy-from", PROXY,
             "--forwarded-allow-ips", PROXY)
TRUST_OUTSIDE_CLIENT = ("--trusted-networks", f"127.0.0.1,::1,{OUTSIDE_CLIENT}")


def haproxy_command() -> str:
    """The haproxy binary: INBOXLOG_TEST_HAPROXY, else installed by the script."""
    command = os.environ.get("INBOXLOG_TEST_HAPROXY")
    if command:
        return command
    result = subprocess.run([str(ROOT / "scripts" / "haproxy-for-tests.sh")],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"could not install haproxy for the tests:\n{result.stderr}")
    os.environ["INBOXLOG_TEST_HAPROXY"] = result.stdout.strip()
    return os.environ["INBOXLOG_TEST_HAPROXY"]


def _config(smtp_port: int, http_port: int, socket_path: Path,
            nodes: Sequence[tuple[int, int]]) -> str:
    smtp_servers = "\n".join(
        # check-send-proxy: the health check opens with a PROXY header too, as the
        # nodes require of every connection.
        f"    server node{i} 127.0.0.1:{smtp} send-proxy-v2 check check-send-proxy "
        "inter 500ms fall 1 rise 1" for i, (smtp, _) in enumerate(nodes))
    http_servers = "\n".join(
        f"    server node{i} 127.0.0.1:{http} check inter 500ms fall 1 rise 1"
        for i, (_, http) in enumerate(nodes))
    return f"""global
    maxconn 2000
    stats socket {socket_path} mode 600 level admin

defaults
    timeout connect 2s
    timeout client 5m
    timeout server 5m
    timeout check 2s
    retries 3
    option redispatch 1

frontend smtp
    mode tcp
    bind 127.0.0.1:{smtp_port}
    default_backend smtp_nodes

backend smtp_nodes
    mode tcp
    balance roundrobin
{smtp_servers}

frontend http
    mode http
    bind 127.0.0.1:{http_port}
    option forwardfor
    default_backend http_nodes

backend http_nodes
    mode http
    balance roundrobin
    option httpchk GET /healthz
    http-response set-header X-Inboxlog-Node %[srv_name]
{http_servers}
"""


class LoadBalancer:
    """A running HAProxy in front of nodes given as (smtp_port, http_port) pairs."""

    def __init__(self, directory: Path, nodes: Sequence[tuple[int, int]]) -> None:
        self.directory = directory
        self.nodes = list(nodes)
        self.smtp_port = free_port()
        self.http_port = free_port()
        self.socket_path = directory / "haproxy.sock"
        self.log_path = directory / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 20) -> LoadBalancer:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "haproxy.cfg"
        config.write_text(_config(self.smtp_port, self.http_port, self.socket_path,
                                  self.nodes))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([haproxy_command(), "-db", "-f", str(config)],
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited early:\n{self.log()}")
            # The admin socket answers once both ports are bound (no connection to
            # them here: it would count as a client's in ``served``).
            with contextlib.suppress(OSError):
                if "Pid:" in self.command("show info"):
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"haproxy did not start in {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        stop_process(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def command(self, line: str) -> str:
        """One command on HAProxy's admin socket (``show stat``, ``disable server
        smtp_nodes/node1``, ...); its answer."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def _stat(self, backend: str) -> list[dict[str, str]]:
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return [row for row in rows
                if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")]

    def served(self, protocol: str) -> dict[str, int]:
        """Connections (SMTP) or requests (HTTP) each node was given so far, by server
        name (node0, node1, ...); health checks are not counted."""
        return {row["svname"]: int(row["stot"]) for row in self._stat(f"{protocol}_nodes")}

    def up(self, protocol: str) -> dict[str, bool]:
        """Whether HAProxy's health checks find each node up."""
        return {row["svname"]: row["status"].startswith("UP")
                for row in self._stat(f"{protocol}_nodes")}

    def wait_until(self, protocol: str, node: int, up: bool, timeout: float = 15) -> None:
        """Wait until HAProxy's health checks see node ``node`` up (or down)."""
        deadline = time.monotonic() + timeout
        while self.up(protocol).get(f"node{node}") is not up:
            if time.monotonic() > deadline:
                raise TimeoutError(f"node{node} not {'up' if up else 'down'} for {protocol} "
                                   f"in {timeout} s: {self.up(protocol)}")
            time.sleep(0.1)


class Cluster:
    """``count`` `inboxlog serve` nodes on the database ``db_url``, started together
    (on a fresh database they migrate one after the other: serve's advisory lock), each
    with its own data directory, behind one HAProxy. ``extra_args``/``extra_env`` go to
    every node, ``node_args[i]`` to node i only. The nodes share one ``--secret-key``
    (env INBOXLOG_SECRET_KEY)."""

    def __init__(self, directory: Path, db_url: str, count: int = 2, *,
                 extra_args: tuple[str, ...] = (),
                 extra_env: dict[str, str] | None = None,
                 node_args: Sequence[tuple[str, ...]] = ()) -> None:
        self.directory = directory
        self.db_url = db_url
        # One secret for all, as an operator must give them: it signs tracking links and
        # sessions and encrypts inbox credentials, which any node may have to read.
        env = {"INBOXLOG_SECRET_KEY": secrets.token_urlsafe(32), **(extra_env or {})}
        self.nodes = [
            Server(directory / f"node{i}", db_url,
                   (*NODE_ARGS, *extra_args, *(node_args[i] if i < len(node_args) else ())),
                   extra_env=env)
            for i in range(count)]
        self.balancer = LoadBalancer(directory / "haproxy",
                                     [(n.smtp_port, n.http_port) for n in self.nodes])

    @property
    def base_url(self) -> str:
        return self.balancer.base_url

    def start(self, timeout: float = 60) -> Cluster:
        try:
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                for started in [pool.submit(node.start, timeout) for node in self.nodes]:
                    started.result()
            self.balancer.start()
            for index in range(len(self.nodes)):
                self.balancer.wait_until("smtp", index, up=True)
                self.balancer.wait_until("http", index, up=True)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.balancer.stop()
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def logs(self) -> str:
        """Every node's log and HAProxy's, for an assertion's message."""
        parts = [f"--- node{i}\n{node.log()}" for i, node in enumerate(self.nodes)]
        return "\n".join([*parts, f"--- haproxy\n{self.balancer.log()}"])

    def new_portal(self, user_email: str = "rep@ourco.example", *aliases: str,
                   name: str = "Test portal") -> PortalAccount:
        return self.nodes[0].new_portal(user_email, *aliases, name=name)

    def smtp(self, source: str = OUTSIDE_CLIENT) -> smtplib.SMTP:
        """An SMTP session through HAProxy from ``source``."""
        return smtplib.SMTP("127.0.0.1", self.balancer.smtp_port, timeout=30,
                            source_address=(source, 0))

    def api(self, token: str | None, source: str = OUTSIDE_CLIENT) -> httpx.Client:
        """An HTTP client of the API through HAProxy from ``source``; each answer names
        the node that gave it in ``X-Inboxlog-Node`` (node0, node1, ...)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30,
                            transport=httpx.HTTPTransport(local_address=source))
