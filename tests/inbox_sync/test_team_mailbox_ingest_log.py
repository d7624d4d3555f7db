"""Mail synced from a team inbox's connected mailbox that is refused (here: too large
to fetch) is recorded in the ingest log with source ``sync`` and the mailbox's own
address; it names the team inbox, so like the inbox's other refusals only its members
and the admin see it (GET /api/v1/ingest-log), not a colleague outside the inbox."""

from __future__ import annotations

import uuid
from email.utils import make_msgid

from tests.support.mail import message
from tests.support.team_mailbox import TeamMailbox


def test_a_too_large_synced_message_is_the_inbox_members_only(team: TeamMailbox) -> None:
    team.connect()
    customer = f"big-{uuid.uuid4().hex[:8]}@customer.example"
    big = make_msgid(domain="customer.example")
    mail = message(sender=customer, to=team.address, subject="The scans", message_id=big)
    mail.add_attachment(b"\0" * (51 * 1024 * 1024), maintype="application",
                        subtype="octet-stream", filename="scans.bin")
    team.arrives(mail)

    def entries(who: str | None) -> list[dict[str, object]]:
        with team.api(who) as api:
            response = api.get("/api/v1/ingest-log")
        assert response.status_code == 200, response.text
        return [e for e in response.json()["items"] if e["sender"] == customer]

    team.synced(lambda: bool(entries(None)))
    [entry] = entries(None)
    assert (entry["reason_code"], entry["source"]) == ("too_large", "sync")
    assert entry["message_id"] == big.strip("<>")
    assert [e["message_id"] for e in entries("1")] == [big.strip("<>")]
    assert entries("outsider") == []
