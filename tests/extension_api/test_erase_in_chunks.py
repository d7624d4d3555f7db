"""Erasing a contact with thousands of emails runs in many short write transactions:
another portal's mail is answered meanwhile, and nothing of the person is left."""

from __future__ import annotations

import re
import threading
import time
from email.utils import make_msgid

from sqlalchemy import func, insert, select

from core.deletion import ERASE_CHUNK
from core.storage.db import Database, sqlite_url
from core.storage.models import Attachment, Email, EmailContact, EmailSource
from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server, run_coroutine

CLONES = 3000  # six chunks' worth: the old single transaction made one commit
CUSTOMER = "big@chunked-erase.example"
PROMPT = 10.0  # seconds: far above a chunk's lock on a loaded CI, below a hung queue


def _write_commits(server: Server) -> int:
    """Committed write transactions outside SMTP ingest (which has its own engine)."""
    with server.api(None) as api:
        text = api.get("/metrics").text
    return sum(int(float(n)) for n in re.findall(
        r'^inboxlog_db_commits_total\{engine="(?:write|main)"\} (\S+)$', text, re.M))


async def _clone(server: Server, portal_id: int, email_id: int, count: int) -> None:
    """``count`` copies of a logged email (its contact links, sources, attachments) in
    the server's database: seeding them over SMTP would take the suite a minute."""
    db = Database(server.db_url or sqlite_url(server.data_dir / "inboxlog.db"))
    try:
        async with db.transaction() as session:
            email = (await session.execute(select(Email.__table__).where(
                Email.id == email_id))).mappings().one()
            links = (await session.execute(select(EmailContact.__table__).where(
                EmailContact.email_id == email_id))).mappings().all()
            sources = (await session.execute(select(EmailSource.__table__).where(
                EmailSource.email_id == email_id))).mappings().all()
            files = (await session.execute(select(Attachment.__table__).where(
                Attachment.email_id == email_id))).mappings().all()
            rows = [{**{k: v for k, v in email.items() if k != "id"},
                     "message_id": f"clone-{n}-{email['message_id']}"} for n in range(count)]
            await session.execute(insert(Email), rows)
            ids = list(await session.scalars(select(Email.id).where(
                Email.portal_id == portal_id, Email.message_id.like("clone-%"))))
            assert len(ids) == count

            def copies(template: object, skip: str = "") -> list[dict[str, object]]:
                return [{**{k: v for k, v in row.items() if k != skip}, "email_id": i}
                        for row in template for i in ids]  # type: ignore[attr-defined]

            await session.execute(insert(EmailContact), copies(links))
            await session.execute(insert(EmailSource), copies(sources))
            await session.execute(insert(Attachment), copies(files, skip="id"))
    finally:
        await db.dispose()


async def _emails_left(server: Server, portal_id: int) -> int:
    db = Database(server.db_url or sqlite_url(server.data_dir / "inboxlog.db"))
    try:
        async with db.read() as session:
            return await session.scalar(select(func.count()).select_from(Email).where(
                Email.portal_id == portal_id)) or 0
    finally:
        await db.dispose()


def test_erasing_thousands_of_emails_leaves_other_mail_flowing(
    server: Server, account: PortalAccount
) -> None:
    """DELETE ?erase=true on a contact with 3,001 emails: another portal's messages sent
    over SMTP meanwhile get their 250 promptly, the erasure made one commit per 500
    emails or so, and none of the person's emails, files or contact is left."""
    other = server.new_portal("desk@elsewhere.example", name="Elsewhere")
    private = b"the customer's own file"
    template = message(sender=account.user_email, to=CUSTOMER, message_id=make_msgid())
    template.add_attachment(private, maintype="application", subtype="pdf", filename="c.pdf")
    template_id = logged_id(deliver(server, template, account.bcc_address))
    run_coroutine(lambda: _clone(server, account.portal_id, template_id, CLONES))
    with server.api(account.admin_token) as api:
        customer = api.get("/api/v1/contacts", params={"email": CUSTOMER}).json()["items"][0]
        attachment = api.get(f"/api/v1/emails/{template_id}").json()["attachments"][0]

    replies: list[tuple[float, float, int]] = []  # (sent, answered, code)
    done = threading.Event()

    def send_meanwhile() -> None:
        with server.smtp() as smtp:
            smtp.ehlo("client.test")
            while not done.is_set():
                raw = message(sender=other.user_email, to="client@elsewhere.example",
                              message_id=make_msgid())
                sent = time.monotonic()
                code, _text = deliver(server, raw, other.bcc_address, smtp=smtp)
                replies.append((sent, time.monotonic(), code))

    before = _write_commits(server)
    sender = threading.Thread(target=send_meanwhile)
    sender.start()
    try:
        with server.api(account.admin_token) as api:
            started = time.monotonic()
            response = api.delete(f"/api/v1/contacts/{customer['id']}",
                                  params={"erase": "true"}, timeout=300)
            finished = time.monotonic()
    finally:
        done.set()
        sender.join()
    commits = _write_commits(server) - before

    assert response.status_code == 200, response.text
    erased = response.json()["erased"]
    assert (erased["emails"], erased["attachments"], erased["blobs"]) == (CLONES + 1,
                                                                          CLONES + 1, 1)
    during = [r for r in replies if r[0] < finished and r[1] > started]
    assert during, "no message was under way while the erasure ran"
    assert all(code == 250 for _s, _a, code in replies)
    assert max(answered - sent for sent, answered, _c in replies) < PROMPT
    assert commits >= (CLONES + 1) // ERASE_CHUNK
    with server.api(account.admin_token) as api:
        assert api.get(f"/api/v1/contacts/{customer['id']}").status_code == 404
        assert api.get("/api/v1/contacts", params={"email": CUSTOMER}).json()["items"] == []
        assert api.get(f"/api/v1/emails/{template_id}").status_code == 404
        assert api.get(f"/api/v1/attachments/{attachment['id']}").status_code == 404
    assert run_coroutine(lambda: _emails_left(server, account.portal_id)) == 0
    assert list((server.data_dir / "blobs").rglob(attachment["sha256"])) == []
