"""`inboxlog serve` in a subprocess, on free loopback ports, driven like a user would."""

from __future__ import annotations

import asyncio
import json
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from core import accounts
from core.storage.db import Database, migrate, sqlite_url

BCC_DOMAIN = "bcc.test"
# The test mail servers (Dovecot, the SMTP recorder, the hostile ones) listen on
# loopback, where a server connects only when the operator allows it.
TEST_MAIL_HOSTS = "127.0.0.1:*"
T = TypeVar("T")


def run_coroutine(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also when called from inside an
    async test (whose loop is running): then on a loop of its own in a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM a child process, and SIGKILL it if it has not exited within 10 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Ports for the tests' servers come from below Linux's ephemeral range (32768-60999),
# where the kernel never puts a client's end of a connection, each pytest-xdist worker
# from a block of its own, taken in turn: a port handed out and not yet bound by its
# server cannot be handed out again (bind(0) could give it to the next caller, or to an
# outgoing connection, before the server took it).
_PORTS_FROM, _PORTS_TO = 10000, 32000
_BLOCK = 1000
_next_port: list[int] = []


def _worker_block() -> tuple[int, int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...; "" unless -n
    index = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    blocks = (_PORTS_TO - _PORTS_FROM) // _BLOCK
    start = _PORTS_FROM + (index % blocks) * _BLOCK
    return start, start + _BLOCK


def free_port() -> int:
    """A loopback TCP port nothing listens on, not handed out before by this process
    (until its block of 1000 wraps around)."""
    start, end = _worker_block()
    if not _next_port:
        # Another pytest run on the machine (not one of ours) starts elsewhere in it.
        _next_port.append(start + (os.getpid() * 7919) % _BLOCK)
    for _ in range(_BLOCK):
        port = _next_port[0]
        _next_port[0] = port + 1 if port + 1 < end else start
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use (or lingering) here: the next one
            return port
    raise RuntimeError(f"no free port in {start}-{end - 1}")


@dataclass(frozen=True)
class PortalAccount:
    portal_id: int
    bcc_address: str
    admin_token: str
    user_id: int
    user_email: str
    user_token: str


class Server:
    """A running `inboxlog serve` with its own data dir and database."""

    def __init__(self, data_dir: Path, db_url: str = "", extra_args: tuple[str, ...] = (),
                 *, allow_mail_hosts: str = TEST_MAIL_HOSTS,
                 extra_env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.allow_mail_hosts = allow_mail_hosts
        self.extra_env = dict(extra_env or {})
        self.db_url = db_url
        self.smtp_port = free_port()
        self.http_port = free_port()
        self.extra_args = extra_args
        self.log_path = data_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INBOXLOG_")}
        env["INBOXLOG_DATA_DIR"] = str(self.data_dir)
        env["INBOXLOG_BCC_DOMAIN"] = BCC_DOMAIN
        if self.db_url:
            env["INBOXLOG_DB"] = self.db_url
        if self.allow_mail_hosts:
            env["INBOXLOG_ALLOW_MAIL_HOSTS"] = self.allow_mail_hosts
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 120, *, scheme: str = "http",
              verify: bool | ssl.SSLContext = True) -> Server:
        """Start it and wait until both ports answer. The time-out is generous: a
        loaded 2-core machine (two pytest workers, each with its servers) has taken
        over 30 s to import and start it; a healthy start still returns in a second."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.loopback_only", "serve", "--no-demo",
                 "--smtp-port", str(self.smtp_port), "--http-port", str(self.http_port),
                 "--base-url", self.base_url, *self.extra_args],
                env=self._env(), stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                url = f"{scheme}://127.0.0.1:{self.http_port}/healthz"
                httpx.get(url, timeout=1, verify=verify).raise_for_status()
                with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=1):
                    return self
            except (httpx.HTTPError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        stop_process(self.process)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str, stdin: bytes | None = None) -> Any:
        """Run an `inboxlog` subcommand against this server's storage; parse its JSON."""
        result = subprocess.run(
            [sys.executable, "-m", "inboxlog.cli", *args], env=self._env(),
            input=stdin, capture_output=True, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"inboxlog {' '.join(args)} failed:\n{result.stderr.decode()}")
        return json.loads(result.stdout.decode().strip().splitlines()[-1])

    def new_portal(self, user_email: str = "rep@ourco.example", *aliases: str,
                   name: str = "Test portal") -> PortalAccount:
        """A portal with one user, made through core against the server's database (the
        same calls `inboxlog admin` makes; tests/test_cli.py covers the command itself,
        and a subprocess per portal would cost the suite minutes)."""
        return run_coroutine(lambda: self._new_portal(user_email, aliases, name))

    async def _new_portal(self, user_email: str, aliases: tuple[str, ...],
                          name: str) -> PortalAccount:
        db = Database(self.db_url or sqlite_url(self.data_dir / "inboxlog.db"))
        try:
            await migrate(db)  # as `inboxlog admin` does: the server may not have run yet
            async with db.transaction() as session:
                portal = await accounts.create_portal(session, name)
                user = await accounts.add_user(session, portal.portal.id, user_email,
                                               name="Rita Rep", aliases=aliases)
                return PortalAccount(
                    portal.portal.id, f"{portal.portal.bcc_token}@{BCC_DOMAIN}",
                    portal.admin_token, user.user.id, user.user.email, user.api_token)
        finally:
            await db.dispose()

    def smtp(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30)

    def api(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


class ClockedServer(Server):
    """`inboxlog serve` whose hits are dated by a file clock (installed by the test entry
    point ``tests.support.loopback_only``); ``move_clock(s)`` dates later hits s later."""

    def __init__(self, data_dir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.clock_file = data_dir / "clock"
        super().__init__(data_dir, extra_args=extra_args)

    def _env(self) -> dict[str, str]:
        return {**super()._env(), "INBOXLOG_TESTS_CLOCK_FILE": str(self.clock_file)}

    def move_clock(self, seconds: float) -> None:
        self.clock_file.write_text(repr(seconds))
