"""The SMTP recorder (``tests.support.smtp_recorder``) taking SASL XOAUTH2: each access
token is checked by RFC 7662 introspection at the test authorization server, and the
login must be the token's user. Run as ``python -m tests.support.smtp_oauth PORT DIR
INTROSPECTION_URL``; failed logins are counted in DIR/failed-logins.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.support.smtp_recorder import Authenticator, Recorder, SmtpRecorder


class OAuthSMTP(SMTP):
    introspection_url = ""
    folder = Path()

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        try:
            fields = dict(part.split("=", 1) for part in
                          base64.b64decode(args[1]).decode().split("\x01") if "=" in part)
            user, token = fields["user"], fields["auth"].removeprefix("Bearer ")
        except (IndexError, ValueError, KeyError):
            return AuthResult(success=False, handled=False)
        answer = await asyncio.to_thread(httpx.post, self.introspection_url,
                                         data={"token": token}, timeout=10)
        info = answer.json() if answer.status_code == 200 else {}
        if info.get("active") is True and info.get("username") == user:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        failed = self.folder / "failed-logins"
        failed.write_text(str(int(failed.read_text() or 0) + 1 if failed.exists() else 1))
        # RFC 7628 3.2.2: the error as a challenge, which the client answers empty.
        await self.challenge_auth(b'{"status":"401","schemes":"bearer"}', encode_to_b64=True)
        return AuthResult(success=False, handled=False)


async def main(port: int, folder: Path, introspection_url: str) -> None:
    OAuthSMTP.introspection_url, OAuthSMTP.folder = introspection_url, folder

    class OAuthController(Controller):
        def factory(self) -> SMTP:
            return OAuthSMTP(self.handler, **self.SMTP_kwargs)

    controller = OAuthController(Recorder(folder), hostname="127.0.0.1", port=port,
                                 authenticator=Authenticator(folder),
                                 auth_require_tls=False, auth_required=True)
    controller.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    controller.stop()


class OAuthSmtpRecorder(SmtpRecorder):
    def __init__(self, folder: Path, port: int, introspection_url: str) -> None:
        super().__init__(folder, port)
        self.introspection_url = introspection_url

    def start(self) -> OAuthSmtpRecorder:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "users.json").write_text("{}")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.smtp_oauth", str(self.port),
             str(self.folder), self.introspection_url],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the XOAUTH2 SMTP server did not start")
        return self

    def failed_logins(self) -> int:
        path = self.folder / "failed-logins"
        return int(path.read_text()) if path.exists() else 0


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))
