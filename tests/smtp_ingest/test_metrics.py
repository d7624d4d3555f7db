"""The ingest counters on ``/metrics`` move with SMTP deliveries, scraped over HTTP."""

from __future__ import annotations

from email.utils import make_msgid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server


def _scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{server.base_url}/metrics", timeout=10)
    response.raise_for_status()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def _moved(before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
           after: dict[tuple[str, tuple[tuple[str, str], ...]], float],
           name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_deliveries_count_outcomes_and_replies(server: Server, account: PortalAccount) -> None:
    """A logged BCC, its duplicate and a stranger's refused message count as one each
    of logged/duplicate (source bcc) and refused (smtp), and as two 250 and one 550
    replies to DATA."""
    before = _scrape(server)
    own = message(sender=account.user_email, to="ann@acme.example",
                  message_id=make_msgid(domain="rep.example"))
    logged_id(deliver(server, own, account.bcc_address, mail_from=account.user_email))
    again = deliver(server, own, account.bcc_address, mail_from=account.user_email)
    assert again[0] == 250
    stranger = message(sender="eve@elsewhere.example", to="ann@acme.example",
                       message_id=make_msgid(domain="elsewhere.example"))
    assert deliver(server, stranger, account.bcc_address)[0] == 550
    after = _scrape(server)
    ingested = "inboxlog_ingested_messages_total"
    assert _moved(before, after, ingested, outcome="logged", source="bcc") == 1
    assert _moved(before, after, ingested, outcome="duplicate", source="bcc") == 1
    assert _moved(before, after, ingested, outcome="refused", source="smtp") == 1
    replies = "inboxlog_smtp_data_replies_total"
    assert _moved(before, after, replies, code="250") == 2
    assert _moved(before, after, replies, code="550") == 1
