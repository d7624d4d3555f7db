"""A team inbox's holidays, set through the HTTP API in ``business_hours``, are days
without working hours for its SLAs: a ticket that waited over a holiday Monday counts
only Tuesday's hour to its first response."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from core.storage.db import Database, sqlite_url
from tests.support.server import Server, run_coroutine
from tests.support.ticket_rows import Step, ticket

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]]}


def _ticket(server: Server, portal_id: int, inbox_id: int) -> None:
    async def write() -> None:
        db = Database(sqlite_url(server.data_dir / "inboxlog.db"))
        try:
            async with db.transaction() as session:
                await ticket(session, portal_id, inbox_id,
                             datetime(2026, 11, 23, 9, tzinfo=BERLIN),
                             [Step("agent_reply", datetime(2026, 11, 24, 10, tzinfo=BERLIN))])
        finally:
            await db.dispose()

    run_coroutine(write)


def test_holidays_set_through_the_api_count_no_hours(server: Server) -> None:
    """Holidays are stored sorted without repeats, refused (422) when not dates, not
    changeable by another portal (404), and take Monday out of the first response."""
    account = server.new_portal("lead@holidays.example")
    other = server.new_portal("lead@other-holidays.example")
    with server.api(account.admin_token) as admin:
        created = admin.post("/api/v1/team-inboxes", json={
            "name": "support", "time_zone": "Europe/Berlin",
            "business_hours": {**OFFICE, "holidays": ["2026-12-25", "2026-11-23",
                                                      "2026-12-25"]}})
        assert created.status_code == 201, created.text
        inbox = created.json()
        assert inbox["business_hours"] == {**OFFICE, "holidays": ["2026-11-23", "2026-12-25"]}
        url = f"/api/v1/team-inboxes/{inbox['id']}"
        for bad in (["23.11.2026"], ["2026-02-30"], [5], "2026-11-23", [["09:00", "17:00"]]):
            answer = admin.patch(url, json={"business_hours": {"holidays": bad}})
            assert answer.status_code == 422, (bad, answer.text)
            assert "business_hours" in answer.json()["error"]["message"], answer.text
        answer = admin.patch(url, json={"business_hours": {"mon": ["09:00", "17:00"]}})
        assert answer.status_code == 422, answer.text
        assert admin.get(url).json()["business_hours"]["holidays"] == ["2026-11-23",
                                                                      "2026-12-25"]
    with server.api(other.admin_token) as intruder:
        answer = intruder.patch(url, json={"business_hours": {"holidays": []}})
        assert answer.status_code == 404, answer.text
    _ticket(server, account.portal_id, inbox["id"])
    with server.api(account.admin_token) as admin:
        report = admin.get("/api/v1/reports/first-response", params={
            "from": "2026-11-23", "to": "2026-11-29", "time_zone": "Europe/Berlin"})
        assert report.status_code == 200, report.text
        # Without the holiday: Monday's 8 h and Tuesday's 1 h.
        assert report.json()["first_response"]["p50"] == 3600, report.text
