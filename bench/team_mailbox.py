"""A team inbox's mailbox: CPU per message of syncing customer mail into tickets, against
the same kind of mail handed to the pipeline as a forward to the team inbox's address
(no IMAP). In process, SQLite, a real Dovecot; A and B interleaved in rounds.

    .venv/bin/python -m bench.team_mailbox [--messages 200] [--rounds 3]

Figures: process CPU milliseconds per message (every thread: IMAP parsing runs on the
network executor, preparing on asyncio's), median of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from email.utils import make_msgid
from pathlib import Path

from imapclient import IMAPClient

from core import accounts, pipeline
from core.inboxes import ConnectRequest, Endpoint
from core.runtime import Runtime, Settings
from core.storage.db import migrate
from core.tickets import inboxes as team_inboxes
from core.types import Channel, Envelope, MailSecurity
from inbox_sync.outbound import Destinations
from inbox_sync.service import InboxService, ServiceOptions
from tests.support.dovecot import Dovecot
from tests.support.mail import message
from tests.support.server import TEST_MAIL_HOSTS, free_port
from tests.support.smtp_recorder import SmtpRecorder


def _mail(n: int, to: str) -> bytes:
    # One sender each: the per-sender hourly allowance is not what is measured.
    return message(sender=f"customer{n}-{uuid.uuid4().hex[:6]}@c{n % 50}.example", to=to,
                   subject=f"Question {n}", message_id=make_msgid(domain="c.example"),
                   body="Hello,\n\nthe printer is on fire again.\n\nThanks").as_bytes()


async def _round(runtime: Runtime, service: InboxService, dovecot: Dovecot,
                 recorder: SmtpRecorder, portal_id: int, count: int) -> tuple[float, float]:
    """(sync CPU-ms per message, forward CPU-ms per message) for ``count`` new messages
    each, into two fresh team inboxes."""
    address, password = f"desk-{uuid.uuid4().hex[:8]}@ourco.example", "pw"
    dovecot.add_user(address, password)
    recorder.add_user(address, password)
    async with runtime.db.transaction() as session:
        synced = await team_inboxes.create_inbox(session, portal_id, team_inboxes.InboxChange(
            name="Synced"))
        forwarded = await team_inboxes.create_inbox(session, portal_id,
                                                    team_inboxes.InboxChange(name="Fwd"))
        synced_id, forwarded_id = synced.id, forwarded.id
    inbox_id = await service.connect_team(portal_id, synced_id, ConnectRequest(
        address, password, imap=Endpoint("127.0.0.1", dovecot.imap_port, MailSecurity.NONE),
        smtp=Endpoint("127.0.0.1", recorder.port, MailSecurity.NONE)))
    with IMAPClient("127.0.0.1", dovecot.imap_port, ssl=False, timeout=30) as client:
        client.login(address, password)
        for n in range(count):
            client.append("INBOX", _mail(n, address), msg_time=datetime.now(UTC))
    began = time.process_time()
    report = await service.sync_now(portal_id, inbox_id)
    sync_cpu = time.process_time() - began
    assert sum(f.logged for f in report.folders) == count, report
    raws = [_mail(n, "support@ourco.example") for n in range(count)]
    arrival = pipeline.Arrival.for_portal(Channel.SMTP, portal_id,
                                          Envelope(tags=(f"inbox-{forwarded_id}",)))
    began = time.process_time()
    for raw in raws:
        await pipeline.log_message(runtime, raw, arrival)
    forward_cpu = time.process_time() - began
    return 1000 * sync_cpu / count, 1000 * forward_cpu / count


async def main(count: int, rounds: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="bench-team-"))
    dovecot = Dovecot([], []).start()
    recorder = SmtpRecorder(data / "smtp", free_port()).start()
    runtime = Runtime(Settings(data_dir=data, secret_key="bench"))
    await migrate(runtime.db)
    service = InboxService(runtime, ServiceOptions(
        background=False, destinations=Destinations.parse(TEST_MAIL_HOSTS)))
    try:
        async with runtime.db.transaction() as session:
            portal_id = (await accounts.create_portal(session, "bench")).portal.id
        figures = [await _round(runtime, service, dovecot, recorder, portal_id, count)
                   for _ in range(rounds)]
    finally:
        await service.stop()
        await runtime.close()
        recorder.stop()
        dovecot.stop()
    sync = statistics.median(f[0] for f in figures)
    forward = statistics.median(f[1] for f in figures)
    print(f"{count} messages x {rounds} rounds (SQLite): CPU-ms per message: "
          f"sync {sync:.1f} (rounds {', '.join(f'{f[0]:.1f}' for f in figures)}), "
          f"forward {forward:.1f} (rounds {', '.join(f'{f[1]:.1f}' for f in figures)}), "
          f"ratio {sync / forward:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.rounds))
