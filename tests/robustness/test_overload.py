"""200 concurrent sessions and slow clients: each is served or refused cleanly, none hangs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path

from bench.load import small_message
from bench.smtpclient import Session, SMTPReplyError, dot_stuff
from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server

SESSIONS = 200
SLOW_CLIENTS = 5
CLIENT_TIMEOUT = 45  # bounds the test: a session not answered by then is a hang


async def _one_session(server: Server, account: PortalAccount, n: int) -> str:
    """One message in a session of its own; the outcome as a short string."""
    try:
        session = await Session.open("127.0.0.1", server.smtp_port, timeout=CLIENT_TIMEOUT)
    except SMTPReplyError as exc:  # a 421 greeting: too busy, come back later
        return str(exc.code)
    except (ConnectionError, OSError) as exc:
        return f"connect failed: {exc!r}"
    try:
        data = small_message(account.user_email, f"o{n}@acme.example", n,
                             message_id=f"<{uuid.uuid4().hex}@overload.example>")
        reply = await session.send(account.user_email, [account.bcc_address], data)
        return str(reply.code)
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        return f"dropped: {exc!r}"
    finally:
        await session.quit()


async def _dribble(server: Server, account: PortalAccount, n: int, seconds: float) -> str:
    """Send one message a few bytes at a time over ``seconds``."""
    session = await Session.open("127.0.0.1", server.smtp_port, timeout=CLIENT_TIMEOUT)
    try:
        await session.command(f"MAIL FROM:<{account.user_email}>")
        await session.command(f"RCPT TO:<{account.bcc_address}>")
        await session.command("DATA", ok=(354,))
        data = dot_stuff(small_message(account.user_email, f"slow{n}@acme.example", n, 2048))
        data += b".\r\n"
        step = max(1, len(data) // int(seconds / 0.05))
        for i in range(0, len(data), step):
            session.writer.write(data[i:i + step])
            await session.writer.drain()
            await asyncio.sleep(0.05)
        return str((await session.reply())[0])
    finally:
        await session.quit()


async def _silent(server: Server) -> str:
    """Connect, read the greeting, then say nothing: the server must not wait on us."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.smtp_port)
    await reader.readline()
    await asyncio.sleep(5)
    writer.close()
    return "silent"


async def test_two_hundred_concurrent_sessions_are_served_or_refused_cleanly(
        tmp_path: Path) -> None:
    """Every session gets 250 or a clean 421/451; the server then serves a normal message."""
    server = Server(tmp_path / "overload").start()
    try:
        account = server.new_portal()
        started = time.monotonic()
        tasks = [_one_session(server, account, n) for n in range(SESSIONS)]
        tasks += [_dribble(server, account, n, 8) for n in range(SLOW_CLIENTS)]
        tasks += [_silent(server) for _ in range(3)]
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks), CLIENT_TIMEOUT + 10)
        counts = Counter(outcomes)
        assert set(counts) <= {"250", "421", "451", "silent"}, counts
        assert counts["250"] >= SESSIONS // 2, counts  # refusing everything is not serving
        assert time.monotonic() - started < CLIENT_TIMEOUT
        assert server.alive()
        logged_id(deliver(server, message(sender=account.user_email, to="after@acme.example"),
                          account.bcc_address))
    finally:
        server.stop()
