"""First sync of a 100,000-message IMAP folder: messages per second and peak memory.

Measured against a real Dovecot (Debian's dovecot-imapd, in a temp dir, like the
tests). The folder is INBOX with 100,000 messages inside the first-sync window, 1 in
100 a reply to a logged thread (so logged, body fetched), the rest unrelated mail
(headers only, never stored). The baseline is the bare IMAP cost of the same folder:
fetching the same header blocks in the same UID batches, with no parsing or database.
Peak memory is the sync process's VmHWM (reset just before the sync) against its RSS
before the sync. Run: ``python -m bench.inbox_sync [COUNT]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import Row
from core import accounts, inboxes, pipeline
from core.credentials import CredentialBox
from core.inboxes import Endpoint
from core.runtime import Runtime, Settings
from core.storage.db import migrate
from core.types import Envelope
from inbox_sync import sync
from inbox_sync.imap import ImapSession
from inbox_sync.outbound import Destinations
from tests.support.dovecot import Dovecot

COUNT = 100_000
REPLY_EVERY = 100
ADDRESS = "bench@ourco.example"


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)


def _fill(dovecot: Dovecot, count: int, seed: str) -> None:
    """Write the messages straight into the Maildir (an IMAP APPEND each would take
    longer than the sync being measured)."""
    folder = dovecot.maildir(ADDRESS)
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        os.chown(folder / sub, dovecot.mail_uid, dovecot.mail_gid)
    os.chown(folder, dovecot.mail_uid, dovecot.mail_gid)
    start = time.time() - 3600
    for n in range(count):
        reply = n % REPLY_EVERY == 0
        headers = [
            "From: " + ("Ann <ann@acme.example>" if reply
                        else f"Sender {n} <s{n}@list{n % 97}.example>"),
            f"To: {ADDRESS}",
            f"Subject: {'Re: Proposal' if reply else f'Newsletter issue {n}'}",
            f"Date: Mon, 16 Nov 2026 09:{n % 60:02d}:00 +0000",
            f"Message-ID: <bench-{n}-{uuid.uuid4().hex[:8]}@mail.test>",
            *( [f"In-Reply-To: {seed}", f"References: {seed}"] if reply else []),
            "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
        ]
        body = ("Hello,\r\n\r\n" + "Some text of a typical short email. " * 40 + "\r\n")
        path = folder / "cur" / f"{int(start) + n}.M{n}P1.bench:2,S"
        path.write_bytes(("\r\n".join(headers) + "\r\n\r\n" + body).encode())
        os.utime(path, (start + n * 0.01, start + n * 0.01))


async def _measure(count: int) -> list[Row]:
    dovecot = Dovecot([], []).start()
    workdir = Path(tempfile.mkdtemp(prefix="inboxlog-bench-sync-"))
    runtime = Runtime(Settings(data_dir=workdir, secret_key="bench"))
    try:
        dovecot.add_user(ADDRESS, "pw")
        await migrate(runtime.db)
        seed = f"<seed-{uuid.uuid4().hex}@ourco.example>"
        async with runtime.db.transaction() as session:
            portal = (await accounts.create_portal(session, "bench")).portal
            user = (await accounts.add_user(session, portal.id, ADDRESS)).user
            prepared = await pipeline.prepare(
                f"From: {ADDRESS}\r\nTo: ann@acme.example\r\nSubject: Proposal\r\n"
                f"Message-ID: {seed}\r\n\r\nHi Ann\r\n".encode())
            await pipeline.ingest(session, portal=portal, prepared=prepared,
                                  envelope=Envelope(), blobs=runtime.blobs,
                                  bcc_domain="bcc.test")
            endpoint = Endpoint("127.0.0.1", dovecot.imap_port, "none")
            inbox = await inboxes.save_inbox(
                session, portal.id, user.id, ADDRESS, ADDRESS, endpoint, endpoint,
                CredentialBox("bench").encrypt("pw"), 30)
            inbox_id = inbox.id
        _fill(dovecot, count, seed)
        imap = ImapSession.open(Endpoint("127.0.0.1", dovecot.imap_port, "none"), ADDRESS, "pw",
                                destinations=Destinations.parse("127.0.0.1:*"))
        indexed = time.perf_counter()
        state = imap.examine("INBOX")  # Dovecot indexes the new Maildir here
        index_seconds = time.perf_counter() - indexed
        assert state.exists == count, state

        bare = time.perf_counter()
        for low in range(1, count + 1, sync.BATCH_UIDS):
            uids = imap.search_range(low, low + sync.BATCH_UIDS - 1, None)
            imap.fetch_headers(uids)
        bare_rate = count / (time.perf_counter() - bare)

        before = _status("VmRSS")
        _reset_peak()
        began = time.perf_counter()
        report = await sync.sync_inbox(runtime, inbox_id, imap)
        seconds = time.perf_counter() - began
        peak = _status("VmHWM")
        imap.close()
        folder = next(f for f in report.folders if f.role == "inbox")
        assert folder.headers_fetched == count, folder
        assert folder.logged == count // REPLY_EVERY, folder
        rate = count / seconds
        name = f"inbox_sync first sync, {count:,} messages"
        print(f"dovecot indexing: {index_seconds:.1f} s; sync: {seconds:.1f} s; "
              f"logged {folder.logged}, bodies fetched {folder.bodies_fetched}", file=sys.stderr)
        return [
            Row(name, "messages/s", rate, bare_rate, "msg/s",
                "bare IMAP header FETCH of the same folder"),
            Row(name, "peak RSS", peak / 1024, before / 1024, "MiB",
                "RSS before the sync"),
            Row(name, "wall time", seconds, index_seconds, "s",
                "Dovecot indexing the new Maildir"),
        ]
    finally:
        await runtime.close()
        dovecot.stop()


def run(count: int = COUNT) -> list[Row]:
    return asyncio.run(_measure(count))


if __name__ == "__main__":
    for row in run(int(sys.argv[1]) if len(sys.argv) > 1 else COUNT):
        print(f"{row.benchmark}: {row.metric} {row.value:,.1f} {row.unit} "
              f"(baseline {row.baseline:,.1f}: {row.baseline_name}; ratio {row.ratio:.2f})")
