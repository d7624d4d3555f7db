"""Inbox sync is an automatic source: list mail in a thread the user logged is rate-limited
and creates no contacts, and list mail tied to no logged thread is not stored."""

from __future__ import annotations

from typing import Any

from tests.extension_api.test_explicit_logging import _list_mail, _log
from tests.inbox_sync.conftest import Mailbox


def test_sync_rate_limits_list_mail_in_a_thread_the_user_logged(mailbox: Mailbox) -> None:
    """One list email logged by one click; sync then finds five replies from one sender
    and an unrelated list email: three replies are logged, nothing else, no contact."""
    root = _list_mail("Ann Lead <ann@widgets.example>", 0, [])
    with mailbox.server.api(mailbox.account.user_token) as api:
        assert _log(api, root).status_code == 201
    parents, replies = [root["Message-ID"]], []
    for n in range(1, 6):
        replies.append(_list_mail("Bob Builder <bob@widgets.example>", n, parents))
        parents.append(replies[-1]["Message-ID"])
        mailbox.append(replies[-1])
    stray = _list_mail("Cleo <cleo@widgets.example>", 0, [], "[dev] Unrelated")
    mailbox.append(stray)
    inbox = mailbox.connect()
    assert mailbox.post(f"/api/v1/inboxes/{inbox['id']}/sync").status_code == 200
    found: list[list[dict[str, Any]]] = [mailbox.find(r["Message-ID"]) for r in replies]
    assert [len(f) for f in found] == [1, 1, 1, 0, 0]
    assert all(f[0]["sources"] == ["sync"] for f in found[:3])
    assert mailbox.find(stray["Message-ID"]) == []
    assert mailbox.get("/api/v1/contacts", email="bob@widgets.example")["items"] == []
