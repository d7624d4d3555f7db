"""Threads whose parts arrive out of order: a message referencing two threads makes them
one, except where the split is deliberate (new people, a user's correction)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx

from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server


def _mail(sender: str, subject: str, *, in_reply_to: str | None = None,
          references: str | None = None, to: str = "dev@lists.example") -> EmailMessage:
    msg = message(sender=sender, to=to, subject=subject, message_id=make_msgid())
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    return msg


def _log(api: httpx.Client, msg: EmailMessage) -> dict[str, Any]:
    response = api.post("/api/v1/emails/log", content=msg.as_bytes(),
                        headers={"Content-Type": "message/rfc822"})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _thread_of(api: httpx.Client, email: dict[str, Any]) -> int:
    return int(api.get(f"/api/v1/emails/{email['id']}").json()["thread_id"])


def test_message_linking_two_halves_of_a_thread_merges_them(
    server: Server, account: PortalAccount
) -> None:
    """Replies logged before the message that ties them (In-Reply-To only, no References,
    as many clients send): once it comes, one thread holds them all, the other is gone."""
    root = make_msgid()  # never logged
    middle = _mail("bea@widgets.example", "Re: Plan", in_reply_to=root, references=root)
    late = _mail("cy@widgets.example", "Re: Plan", in_reply_to=middle["Message-ID"])
    early = _mail("dee@widgets.example", "Re: Plan", in_reply_to=root)
    with server.api(account.user_token) as api:
        first, second = _log(api, late), _log(api, early)
        assert first["thread_id"] != second["thread_id"]
        third = _log(api, middle)
        threads = {_thread_of(api, e) for e in (first, second, third)}
        assert threads == {min(first["thread_id"], second["thread_id"])}
        [kept] = threads
        assert len(api.get(f"/api/v1/threads/{kept}").json()["emails"]) == 3
        gone = max(first["thread_id"], second["thread_id"])
        assert api.get(f"/api/v1/threads/{gone}").status_code == 404
        # A later reply to any of them lands there too.
        assert _log(api, _mail("eve@widgets.example", "Re: Plan",
                               in_reply_to=late["Message-ID"]))["thread_id"] == kept


def test_ids_without_an_at_sign_tie_nothing(server: Server, account: PortalAccount) -> None:
    """`In-Reply-To: <yes>` (typed at git send-email's prompt) is no message id: two
    unrelated patches carrying it stay in threads of their own."""
    with server.api(account.user_token) as api:
        a = _log(api, _mail("fay@kernel.example", "[PATCH] a", in_reply_to="<yes>",
                            references="<yes>"))
        b = _log(api, _mail("gil@kernel.example", "[PATCH] b", in_reply_to="<yes>",
                            references="<yes>"))
        assert _thread_of(api, a) != _thread_of(api, b)


def test_reply_referencing_a_new_people_thread_and_its_origin_does_not_merge_them(
    server: Server, account: PortalAccount
) -> None:
    """The user re-used an email to Fay to write to Gus (a new thread by design); Gus's
    reply references both emails, and joins Gus's thread without merging Fay's."""
    user = account.user_email
    root = message(sender=user, to="fay@first.example", message_id=make_msgid())
    reuse = message(sender=user, to="gus@second.example", subject="Fwd: Quarterly numbers",
                    message_id=make_msgid(), in_reply_to=root["Message-ID"])
    root_id = logged_id(deliver(server, root, account.bcc_address))
    reuse_id = logged_id(deliver(server, reuse, account.bcc_address))
    reply = _mail("gus@second.example", "Re: Fwd: Quarterly numbers", to=user,
                  in_reply_to=reuse["Message-ID"],
                  references=f"{root['Message-ID']} {reuse['Message-ID']}")
    with server.api(account.user_token) as api:
        fay_thread = _thread_of(api, {"id": root_id})
        gus_thread = _thread_of(api, {"id": reuse_id})
        assert fay_thread != gus_thread
        assert _log(api, reply)["thread_id"] == gus_thread
        assert _thread_of(api, {"id": root_id}) == fay_thread
        assert len(api.get(f"/api/v1/threads/{fay_thread}").json()["emails"]) == 1


def test_reply_does_not_undo_a_thread_split_by_hand(
    server: Server, account: PortalAccount
) -> None:
    """A user split an email off its thread; a reply referencing it and the old thread
    follows it to the new thread, and the two threads stay apart."""
    with server.api(account.user_token) as api:
        parent = _mail("hal@widgets.example", "Roadmap")
        child = _mail("ida@widgets.example", "Re: Roadmap",
                      in_reply_to=parent["Message-ID"], references=parent["Message-ID"])
        first, second = _log(api, parent), _log(api, child)
        assert first["thread_id"] == second["thread_id"]
        split = api.post(f"/api/v1/emails/{second['id']}/thread", json={"thread_id": None})
        assert split.status_code == 200
        own = split.json()["thread_id"]
        reply = _mail("jo@widgets.example", "Re: Roadmap", in_reply_to=child["Message-ID"],
                      references=f"{parent['Message-ID']} {child['Message-ID']}")
        assert _log(api, reply)["thread_id"] == own
        assert _thread_of(api, first) == first["thread_id"] != own
