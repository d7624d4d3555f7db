"""Hostile searches over real HTTP against `inboxlog serve`, on SQLite and PostgreSQL:
a query, filter or cursor that cannot be run is a precise 4xx (never a 500, never a
dropped connection), and a cursor never crosses portals."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage

import pytest

from tests.support import postgres
from tests.support.mail import logged_id, message
from tests.support.server import PortalAccount, Server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def search_server(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with postgres.database_for(request.param) as url:
        running = Server(tmp_path_factory.mktemp(f"attacks-{request.param}"),
                         db_url=url).start()
        yield running
        running.stop()


def _log(server: Server, account: PortalAccount, subject: str) -> int:
    msg: EmailMessage = message(sender=account.user_email, to="dana@acme.example",
                                subject=subject)
    with server.smtp() as smtp:
        smtp.ehlo("client.example")
        assert smtp.mail(account.user_email)[0] == 250
        assert smtp.rcpt(account.bcc_address)[0] == 250
        code, reply = smtp.data(msg.as_bytes(policy=policy.SMTP))
    return logged_id((code, reply.decode()))


def _cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


HOSTILE = [
    {"cursor": _cursor("0x0p+0", "2026-01-01T00:00:00+00:00", 2**70)},
    {"cursor": _cursor("0x0p+0", "2026-01-01T00:00:00+00:00", -(2**70))},
    {"cursor": _cursor("0x0p+0", "0001-01-01T00:00:00+05:00", 1)},
    {"cursor": _cursor("0x0p+0", "9999-12-31T23:59:59-05:00", 1)},
    {"cursor": _cursor("inf", "2026-01-01T00:00:00+00:00", 1)},
    {"cursor": _cursor("nan", "2026-01-01T00:00:00+00:00", 1)},
    {"cursor": _cursor("0x0p+0", "2026-01-01T00:00:00+00:00", True)},
    {"after": "0001-01-01T00:00:00+05:00"},
    {"before": "9999-12-31T23:59:59-05:00"},
    {"q": "offer before:9999-12-31"},
    {"q": "offer after:0001-01-01"},
]


@pytest.mark.parametrize("params", HOSTILE, ids=[f"hostile{n}" for n in range(len(HOSTILE))])
def test_out_of_range_cursors_and_dates_are_refused(search_server: Server,
                                                    params: dict[str, str]) -> None:
    """A cursor with an id, a score or a moment no database holds, and a date at the
    calendar's ends, is a 400/422 naming what is wrong; the server keeps serving."""
    account = search_server.new_portal()
    _log(search_server, account, "An offer")
    with search_server.api(account.user_token) as api:
        answer = api.get("/api/v1/search", params={"q": "offer", **params})
        assert answer.status_code in (200, 400, 422), answer.text
        if answer.status_code != 200:
            assert answer.json()["error"]["message"]
        assert api.get("/api/v1/search", params={"q": "offer"}).status_code == 200


def test_a_cursor_never_crosses_portals(search_server: Server) -> None:
    """Another portal's cursor, given to this portal's search, pages only this portal."""
    theirs, ours = search_server.new_portal(), search_server.new_portal()
    for n in range(3):
        _log(search_server, theirs, f"Secret offer {n}")
    mine = _log(search_server, ours, "My offer")
    with search_server.api(theirs.user_token) as api:
        page = api.get("/api/v1/search", params={"q": "offer", "limit": 1}).json()
    assert page["cursor"]
    with search_server.api(ours.user_token) as api:
        answer = api.get("/api/v1/search", params={"q": "offer", "cursor": page["cursor"]})
    assert answer.status_code == 200
    assert {hit["email"]["id"] for hit in answer.json()["items"]} <= {mine}
