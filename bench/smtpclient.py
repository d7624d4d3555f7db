"""A small asyncio SMTP client that sends bytes exactly as given.

smtplib rewrites line endings, which hides what a server does with bare LF or CR;
load tests also need many sessions on one event loop. This client does neither
rewriting nor retries: it reports the server's replies and leaves judgement to callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass

_LEADING_DOT = re.compile(rb"(?m)^\.")


class SMTPReplyError(Exception):
    """The server answered a command before DATA with something other than 2xx/3xx."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


@dataclass(frozen=True)
class Reply:
    code: int
    text: str
    seconds: float  # from the DATA command to the reply after the final dot


def dot_stuff(data: bytes) -> bytes:
    """RFC 5321 4.5.2 transparency for CRLF messages, ending with CRLF."""
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return _LEADING_DOT.sub(b"..", data)


class Session:
    """One SMTP connection; reuse it for several transactions."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 timeout: float) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout

    @classmethod
    async def open(cls, host: str, port: int, *, timeout: float = 60,
                   helo: str = "client.test") -> Session:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=1 << 20), timeout)
        session = cls(reader, writer, timeout)
        code, text = await session.reply()
        if code != 220:
            session.close()
            raise SMTPReplyError(code, text)
        await session.command(f"EHLO {helo}")
        return session

    async def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), self.timeout)
            if not line:
                raise ConnectionError("server closed the connection")
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                break
        return int(lines[-1][:3]), "\n".join(x[4:] for x in lines)

    async def command(self, line: str, *, ok: tuple[int, ...] = (250,)) -> tuple[int, str]:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()
        code, text = await self.reply()
        if code not in ok:
            raise SMTPReplyError(code, text)
        return code, text

    async def send(self, mail_from: str, rcpts: list[str], data: bytes, *,
                   stuffed: bool = False) -> Reply:
        """One transaction. ``data`` is dot-stuffed here unless ``stuffed``; then it is
        sent as is, followed by CRLF.CRLF. Refusals before DATA come back as a Reply."""
        try:
            await self.command(f"MAIL FROM:<{mail_from}>")
            for rcpt in rcpts:
                await self.command(f"RCPT TO:<{rcpt}>")
        except SMTPReplyError as exc:
            await self.command("RSET")
            return Reply(exc.code, exc.text, 0.0)
        started = time.perf_counter()
        try:
            await self.command("DATA", ok=(354,))
        except SMTPReplyError as exc:
            return Reply(exc.code, exc.text, time.perf_counter() - started)
        self.writer.write(data if stuffed else dot_stuff(data))
        self.writer.write(b"\r\n.\r\n" if stuffed else b".\r\n")
        await self.writer.drain()
        code, text = await self.reply()
        return Reply(code, text, time.perf_counter() - started)

    async def quit(self) -> None:
        with contextlib.suppress(OSError, ConnectionError, SMTPReplyError, TimeoutError):
            await self.command("QUIT", ok=(221,))
        self.close()

    def close(self) -> None:
        self.writer.close()
