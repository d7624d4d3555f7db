"""Tracking pixel: requests per second of inboxlog's /t/o/ (verified, recorded, classified)
against a bare Starlette endpoint returning the same GIF; every open must be recorded.

Both run as uvicorn servers in their own process on this machine and get the same load:
an asyncio HTTP/1.1 client with keep-alive connections. After the load, inboxlog is
stopped cleanly (SIGTERM) and restarted, and the recorded opens are counted: the
figure only stands if none was lost.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import Row, Server, percentile, wait_for_port
from tests.support.server import free_port

REQUESTS = 20_000
CONNECTIONS = 50
AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


async def _load(port: int, path: str, total: int) -> tuple[float, list[float], int]:
    """Send ``total`` GETs over CONNECTIONS keep-alive connections; (seconds, latencies, ok)."""
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {AGENT}\r\n"
               "X-Forwarded-For: 203.0.113.50\r\nAccept: image/*\r\n\r\n").encode()
    remaining = [total]
    latencies: list[float] = []
    ok = [0]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while remaining[0] > 0:
                remaining[0] -= 1
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                ok[0] += head.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return time.perf_counter() - start, latencies, ok[0]


def _opens(server: Server, token: str, send_id: int, expected: int) -> int:
    deadline = time.monotonic() + 60
    with server.api(token) as api:
        while True:
            opens = api.get(f"/api/v1/tracked-sends/{send_id}").json()["tracking"]["opens"]
            if opens >= expected or time.monotonic() > deadline:
                return int(opens)
            time.sleep(0.5)


def run() -> list[Row]:
    port = free_port()
    bare = subprocess.Popen([sys.executable, "-m", "bench._bare_pixel", str(port)],
                            cwd=Path(__file__).parents[1])
    try:
        wait_for_port(port)
        asyncio.run(_load(port, "/t/o/warmup", 1000))
        bare_seconds, bare_lat, bare_ok = asyncio.run(_load(port, "/t/o/x", REQUESTS))
    finally:
        bare.terminate()
        bare.wait(10)

    server = Server(Path(tempfile.mkdtemp(prefix="bench-pixel-")) / "srv").start(timeout=120)
    try:
        account = server.new_portal()
        with server.api(account.user_token) as api:
            send = api.post("/api/v1/tracked-sends", json={
                "to": ["reader@bench.example"], "subject": "bench",
                "html": "<p>hi</p>"}).json()
        path = urlsplit(send["pixel_url"]).path
        asyncio.run(_load(server.http_port, path, 1000))  # warm-up, recorded too
        seconds, latencies, ok = asyncio.run(_load(server.http_port, path, REQUESTS))
    finally:
        server.stop()  # SIGTERM: a clean shutdown must flush every pending hit
    server.start(timeout=120)
    try:
        recorded = _opens(server, account.user_token, send["id"], REQUESTS + 1000)
    finally:
        server.stop()

    rate, bare_rate = ok / seconds, bare_ok / bare_seconds
    return [
        Row("tracking pixel", "requests/s", rate, bare_rate, "req/s", "bare Starlette",
            "ratio >= 0.5", rate / bare_rate >= 0.5),
        Row("tracking pixel", "p99 latency", percentile(latencies, 99) * 1000,
            percentile(bare_lat, 99) * 1000, "ms", "bare Starlette"),
        Row("tracking pixel", "opens recorded after a clean restart", recorded,
            REQUESTS + 1000, "opens", "opens answered", "all recorded",
            recorded == REQUESTS + 1000),
    ]

