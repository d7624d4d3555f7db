"""One 45 MB message (a 44 MB base64 attachment): time to 250, the server's peak memory,
and whether small messages and /healthz keep being served meanwhile.

Baselines: the same message to a bare aiosmtpd (time to 250); the message size (memory);
the same prober against the idle inboxlog server just before (stall).
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.common import Row, Server, bare_smtpd, rss_kib, running
from bench.load import small_message
from bench.smtpclient import Session

USER = "rep@ourco.example"
ATTACHMENT_BYTES = 32_500_000  # 44.5 MB once base64-encoded in 76-character lines
PROBE_INTERVAL = 0.1


def big_message(sender: str) -> bytes:
    encoded = base64.encodebytes(os.urandom(ATTACHMENT_BYTES)).replace(b"\n", b"\r\n")
    head = (f"From: Rita Rep <{sender}>\r\nTo: Ann Buyer <ann@acme.example>\r\n"
            f"Subject: The full dataset\r\nMessage-ID: <{uuid.uuid4().hex}@bench.example>\r\n"
            "Date: Mon, 16 Nov 2026 09:30:00 +0100\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe dataset, as promised.\r\n"
            "--b1\r\nContent-Type: application/octet-stream\r\n"
            'Content-Disposition: attachment; filename="dataset.bin"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n").encode()
    return head + encoded + b"--b1--\r\n"


class Prober:
    """Every 100 ms, one small SMTP message and one GET /healthz; keeps the worst wait."""

    def __init__(self, smtp_port: int, http_url: str, rcpt: str) -> None:
        self.smtp_port, self.http_url, self.rcpt = smtp_port, http_url, rcpt
        self.worst = {"smtp": 0.0, "http": 0.0}
        self.failures: list[str] = []
        self.stop = asyncio.Event()

    async def _loop(self, kind: str, probe: object) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                await probe()  # type: ignore[operator]
            except Exception as exc:
                self.failures.append(f"{kind}: {exc!r}")
            self.worst[kind] = max(self.worst[kind], time.perf_counter() - started)
            await asyncio.sleep(PROBE_INTERVAL)

    async def run(self) -> None:
        session = await Session.open("127.0.0.1", self.smtp_port)
        n = 0

        async def smtp_probe() -> None:
            nonlocal n
            n += 1
            reply = await session.send(USER, [self.rcpt], small_message(USER, "p@acme.example",
                                                                        n, 1024))
            if reply.code != 250:
                raise RuntimeError(f"{reply.code} {reply.text}")

        async with httpx.AsyncClient(timeout=60) as http:
            async def http_probe() -> None:
                (await http.get(self.http_url + "/healthz")).raise_for_status()
            await asyncio.gather(self._loop("smtp", smtp_probe), self._loop("http", http_probe))
        await session.quit()


async def _send_big(port: int, rcpt: str, data: bytes) -> float:
    session = await Session.open("127.0.0.1", port, timeout=600)
    try:
        started = time.perf_counter()
        reply = await session.send(USER, [rcpt], data)
        elapsed = time.perf_counter() - started
    finally:
        await session.quit()
    assert reply.code == 250, f"large message refused: {reply.code} {reply.text}"
    return elapsed


async def _probe_for(prober: Prober, seconds: float) -> None:
    task = asyncio.create_task(prober.run())
    await asyncio.sleep(seconds)
    prober.stop.set()
    await task


async def _against_inboxlog(server: Server, rcpt: str, data: bytes) -> dict[str, float]:
    idle = Prober(server.smtp_port, server.base_url, rcpt)
    await _probe_for(idle, 3)
    assert server.process is not None
    before = rss_kib(server.process.pid)
    busy = Prober(server.smtp_port, server.base_url, rcpt)
    probing = asyncio.create_task(busy.run())
    await asyncio.sleep(0.5)
    elapsed = await _send_big(server.smtp_port, rcpt, data)
    await asyncio.sleep(0.5)
    busy.stop.set()
    await probing
    after = rss_kib(server.process.pid)
    assert not idle.failures and not busy.failures, idle.failures + busy.failures
    return {
        "seconds": elapsed,
        "growth": (after["VmHWM"] - before["VmRSS"]) * 1024,
        "idle_stall": max(idle.worst.values()),
        "stall": max(busy.worst.values()),
        "smtp_stall": busy.worst["smtp"], "http_stall": busy.worst["http"],
    }


def run() -> list[Row]:
    data = big_message(USER)
    size = len(data)
    with bare_smtpd() as (port, _):
        bare_seconds = asyncio.run(_send_big(port, "anyone@bare.test", data))
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp, \
            running(Server(Path(tmp))) as server:
        account = server.new_portal(USER)
        got = asyncio.run(_against_inboxlog(server, account.bcc_address, data))
    mb = size / 1e6
    return [
        Row("large message", f"time to 250 ({mb:.1f} MB)", got["seconds"], bare_seconds, "s",
            "bare aiosmtpd"),
        Row("large message", "peak RSS growth", got["growth"] / 1e6, mb, "MB",
            "message size", "ratio < 3", got["growth"] / size < 3),
        Row("large message", "max probe stall (SMTP 1 KB + /healthz every 100 ms)",
            got["stall"] * 1000, got["idle_stall"] * 1000, "ms", "same probes, idle server",
            "value < 1000 ms", got["stall"] < 1),
        Row("large message", "  of which SMTP probe", got["smtp_stall"] * 1000,
            got["idle_stall"] * 1000, "ms", "same probes, idle server"),
        Row("large message", "  of which /healthz probe", got["http_stall"] * 1000,
            got["idle_stall"] * 1000, "ms", "same probes, idle server"),
    ]
