"""A real SMTP submission server (aiosmtpd, AUTH PLAIN/LOGIN) that records what it gets.

Run as ``python -m tests.support.smtp_recorder PORT DIR``; users and passwords are in
DIR/users.json. Each accepted message is written to DIR as ``<n>.eml`` with its
envelope in ``<n>.json``. A password of ``!app`` answers Gmail's ``534 5.7.9
Application-specific password required`` for that user.

Recipients choose the answer to RCPT: at refused.example ``550 5.1.1``, at
throttled.example Gmail's rate limit ``421 4.7.0 Try again later`` (the server then
hangs up), at full.example ``452 4.2.2 Mailbox full``. A message for hold.example waits
after its DATA, before the reply, until the test calls ``release()``: the moment between
"the server has the message" and "the sender knows it". A held message is recorded once
released even if the client hung up meanwhile (a time-out waiting for the reply): the
server had it, as a real one would have queued it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.server import free_port, stop_process


class Recorder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.kept: set[asyncio.Task[None]] = set()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        domain = address.lower().rpartition("@")[2]
        if domain == "refused.example":
            return "550 5.1.1 no such user here"
        if domain == "throttled.example":
            return "421 4.7.0 Try again later, closing connection"
        if domain == "full.example":
            return "452 4.2.2 Mailbox full"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if any(r.lower().endswith("@hold.example") for r in envelope.rcpt_tos):
            # aiosmtpd cancels the handler when the client hangs up: hold and record
            # in a task of its own, which that does not stop.
            task = asyncio.create_task(self._hold_then_record(session, envelope))
            self.kept.add(task)
            task.add_done_callback(self.kept.discard)
            await asyncio.shield(task)
        else:
            self._record(session, envelope)
        return "250 2.0.0 queued"

    async def _hold_then_record(self, session: Any, envelope: Any) -> None:
        await self._hold()
        self._record(session, envelope)

    def _record(self, session: Any, envelope: Any) -> None:
        self.count += 1
        base = self.folder / str(self.count)
        base.with_suffix(".eml").write_bytes(envelope.original_content or envelope.content)
        base.with_suffix(".json").write_text(json.dumps(
            {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
             "user": getattr(session, "login_data", None) and
             session.login_data.decode(errors="replace")}))

    async def _hold(self) -> None:
        holding, release = self.folder / "holding", self.folder / "release"
        holding.touch()
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        release.unlink(missing_ok=True)
        holding.unlink()


class Authenticator:
    """Checks against ``users``, re-read from DIR/users.json on every login."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "users.json"

    @property
    def users(self) -> dict[str, str]:
        return dict(json.loads(self.path.read_text()))

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        expected = self.users.get(user)
        if expected == "!app":
            return AuthResult(success=False, handled=True, message=(
                "534 5.7.9 Application-specific password required"))
        if expected is None or expected != password:
            return AuthResult(success=False, handled=False)
        session.login_data = auth_data.login
        return AuthResult(success=True)


async def main(port: int, folder: Path) -> None:
    controller = Controller(Recorder(folder), hostname="127.0.0.1", port=port,
                            authenticator=Authenticator(folder), auth_require_tls=False,
                            auth_required=True)
    controller.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    controller.stop()


class SmtpRecorder:
    """The recorder in a subprocess; ``messages()`` reads what it received."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.users: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def relay(cls, folder: Path) -> SmtpRecorder:
        """A started recorder standing for the operator's relay (``--smtp-relay``): it takes
        mail only from the user ``relay`` (``serve_args`` names it to a server)."""
        recorder = cls(folder, free_port())
        recorder.add_user("relay", "s3cret")
        return recorder.start()

    def serve_args(self) -> tuple[str, str]:
        """The ``inboxlog serve`` arguments that send its mail through this relay."""
        return ("--smtp-relay", f"smtp://relay:s3cret@127.0.0.1:{self.port}")

    def add_user(self, user: str, password: str) -> None:
        """``password`` "!app": this user is told an app password is required."""
        self.users[user] = password
        (self.folder / "users.json").write_text(json.dumps(self.users))

    def start(self) -> SmtpRecorder:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "users.json").write_text(json.dumps(self.users))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.smtp_recorder", str(self.port),
             str(self.folder)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the SMTP recorder did not start")
        return self

    def stop(self) -> None:
        stop_process(self.process)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def wait_holding(self, timeout: float = 30) -> None:
        """Until a message for hold.example has arrived and waits for its reply."""
        deadline = time.monotonic() + timeout
        while not (self.folder / "holding").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("no message is being held")
            time.sleep(0.02)

    def release(self) -> None:
        """Let the held message through: the server answers 250."""
        (self.folder / "release").touch()

    def messages(self) -> list[tuple[dict[str, Any], bytes]]:
        found = sorted((p for p in self.folder.glob("*.json") if p.stem.isdigit()),
                       key=lambda p: int(p.stem))
        return [(json.loads(p.read_text()), p.with_suffix(".eml").read_bytes()) for p in found]


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2])))
