"""A database outage: DATA answers 451, nothing is acknowledged, and service resumes."""

from __future__ import annotations

import asyncio
from email.utils import make_msgid

from tests.support import postgres
from tests.support.mail import deliver, logged_id, message
from tests.support.server import Server


def test_database_outage_answers_451_and_recovers(pg_server: Server) -> None:
    """With PostgreSQL refusing connections DATA gets 451 4.3.0; afterwards mail is logged."""
    account = pg_server.new_portal()
    logged_id(deliver(pg_server, message(sender=account.user_email, to="m@outage.example",
                                         message_id=make_msgid()), account.bcc_address))

    during = message(sender=account.user_email, to="m@outage.example", message_id=make_msgid())
    with pg_server.smtp() as smtp:
        smtp.ehlo("client.test")
        smtp.mail(account.user_email)
        assert smtp.rcpt(account.bcc_address)[0] == 250
        asyncio.run(postgres.set_available(pg_server.db_url, False))
        try:
            code, text = smtp.data(during.as_bytes())
            assert code == 451 and text.decode().startswith("4.3.0"), (code, text)
            # A new transaction during the outage is refused at RCPT, transiently too.
            smtp.rset()
            smtp.mail(account.user_email)
            code, text = smtp.rcpt(account.bcc_address)
            assert code == 451 and text.decode().startswith("4.3.0")
        finally:
            asyncio.run(postgres.set_available(pg_server.db_url, True))

    with pg_server.api(account.user_token) as api:
        assert api.get("/healthz").json()["status"] == "ok"
        found = api.get("/api/v1/emails", params={"message_id": during["Message-ID"]}).json()
        assert found["items"] == []  # the 451'd message was not half-stored
    # The sender's MTA retries after the 451, and now it is logged.
    logged_id(deliver(pg_server, during, account.bcc_address))
    assert pg_server.alive()
