"""An SMTP load client: many parallel sessions, each reused for several messages."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from bench.smtpclient import Session

BODY_LINE = "The quick brown fox jumps over the lazy dog; figures for Q3 attached below.\n"


def small_message(sender: str, to: str, n: int, size: int = 4096, *,
                  in_reply_to: str | None = None, message_id: str | None = None) -> bytes:
    """A plain-text message of about ``size`` bytes with a unique Message-ID."""
    message_id = message_id or f"<{uuid.uuid4().hex}@bench.example>"
    head = (f"From: Rita Rep <{sender}>\r\nTo: Buyer {n} <{to}>\r\n"
            f"Subject: Proposal {n}\r\nDate: Mon, 16 Nov 2026 09:30:00 +0100\r\n"
            f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n")
    if in_reply_to:
        head += f"In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n"
    body = BODY_LINE * max(1, (size - len(head)) // len(BODY_LINE))
    return (head + "\r\n" + body).encode()


@dataclass(frozen=True)
class LoadResult:
    seconds: float
    latencies: list[float]  # DATA latency of each 250
    codes: dict[int, int]

    @property
    def ok(self) -> int:
        return self.codes.get(250, 0)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds


async def load(port: int, mail_from: str, rcpt: str, messages: list[bytes], *,
               sessions: int = 20, per_session: int = 25) -> LoadResult:
    """Send ``messages`` over ``sessions`` parallel connections, reconnecting every
    ``per_session`` messages; returns throughput and DATA latencies."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for data in messages:
        queue.put_nowait(data)
    latencies: list[float] = []
    codes: dict[int, int] = {}

    async def worker() -> None:
        while not queue.empty():
            session = await Session.open("127.0.0.1", port)
            try:
                for _ in range(per_session):
                    if queue.empty():
                        break
                    reply = await session.send(mail_from, [rcpt], queue.get_nowait())
                    codes[reply.code] = codes.get(reply.code, 0) + 1
                    if reply.code == 250:
                        latencies.append(reply.seconds)
            finally:
                await session.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(sessions)))
    return LoadResult(time.perf_counter() - started, latencies, codes)


def make_messages(count: int, sender: str, to: Callable[[int], str], *,
                  size: int = 4096) -> list[bytes]:
    return [small_message(sender, to(n), n, size) for n in range(count)]
