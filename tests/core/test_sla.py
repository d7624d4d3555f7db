"""SLA figures in business hours, exact, against values computed by hand (each test's
comment shows the sum): across a weekend, both DST changes, a holiday and a reopen."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.sla import Activity, BusinessHours, percentile, ticket_sla

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
HOUR = 3600.0


def berlin(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)  # type: ignore[misc]


def test_across_a_weekend() -> None:
    """Friday 16:00 to Monday 10:00 in Berlin office hours: Fri 16-17 (1 h) + Mon 9-10
    (1 h) = 7200 s; the weekend counts nothing."""
    hours = BusinessHours.parse("Europe/Berlin", OFFICE)
    assert hours.seconds_between(berlin(2026, 11, 27, 16), berlin(2026, 11, 30, 10)) == 2 * HOUR
    log = [Activity("created", berlin(2026, 11, 27, 16)),
           Activity("agent_reply", berlin(2026, 11, 30, 10)),
           Activity("status", berlin(2026, 12, 1, 12), "closed")]
    sla = ticket_sla(log, hours)
    # Closed Tuesday 12:00: Fri 1 h + Mon 8 h + Tue 9-12 3 h = 12 h.
    assert (sla.first_response, sla.first_resolution, sla.full_resolution) == (
        2 * HOUR, 12 * HOUR, 12 * HOUR)


def test_outside_hours_start_and_end() -> None:
    """Created Saturday, answered Saturday: 0 business seconds; created Monday 07:00,
    answered 09:30: 0.5 h (the clock starts at 09:00)."""
    hours = BusinessHours.parse("Europe/Berlin", OFFICE)
    assert hours.seconds_between(berlin(2026, 11, 28, 10), berlin(2026, 11, 28, 15)) == 0
    assert hours.seconds_between(berlin(2026, 11, 30, 7), berlin(2026, 11, 30, 9, 30)) == 1800


def test_dst_ends_the_day_is_an_hour_longer() -> None:
    """New York, weekend hours 00:00-12:00. DST ends Sunday 2026-11-01 at 02:00 EDT
    (clocks back to 01:00 EST), so Sunday 00:00 EDT (04:00 UTC) to 11:00 EST (16:00 UTC)
    is 12 real hours, though the wall clock moved 11. Created Saturday 23:00 (after
    hours): the clock starts Sunday 00:00."""
    hours = BusinessHours.parse("America/New_York", {"sat": [["00:00", "12:00"]],
                                                     "sun": [["00:00", "12:00"]]})
    created = datetime(2026, 10, 31, 23, tzinfo=NEW_YORK)
    replied = datetime(2026, 11, 1, 11, tzinfo=NEW_YORK)
    assert replied.astimezone(UTC) == datetime(2026, 11, 1, 16, tzinfo=UTC)
    sla = ticket_sla([Activity("created", created), Activity("agent_reply", replied)], hours)
    assert sla.first_response == 12 * HOUR


def test_dst_starts_the_day_is_an_hour_shorter() -> None:
    """Berlin, Sunday hours 00:00-12:00; DST starts Sunday 2027-03-28 at 02:00 CET
    (clocks on to 03:00 CEST): 00:00 CET (Sat 23:00 UTC) to 12:00 CEST (10:00 UTC) is
    11 real hours. Created Saturday 20:00 (no Saturday hours), answered 12:30."""
    hours = BusinessHours.parse("Europe/Berlin", {"sun": [["00:00", "12:00"]]})
    sla = ticket_sla([Activity("created", berlin(2027, 3, 27, 20)),
                      Activity("agent_reply", berlin(2027, 3, 28, 12, 30))], hours)
    assert sla.first_response == 11 * HOUR


def _reopened_log() -> list[Activity]:
    return [
        Activity("created", berlin(2026, 11, 30, 9)),  # Monday
        Activity("agent_reply", berlin(2026, 11, 30, 10)),
        Activity("customer_message", berlin(2026, 11, 30, 11)),
        Activity("customer_message", berlin(2026, 11, 30, 11, 10)),  # still unanswered
        Activity("agent_reply", berlin(2026, 11, 30, 11, 30)),
        Activity("status", berlin(2026, 11, 30, 12), "closed"),
        Activity("note", berlin(2026, 12, 1, 9)),
        Activity("status", berlin(2026, 12, 2, 16), "open"),  # Wednesday: reopened
        Activity("customer_message", berlin(2026, 12, 2, 16)),
        Activity("agent_reply", berlin(2026, 12, 3, 9, 30)),  # Thursday
        Activity("status", berlin(2026, 12, 3, 10), "closed"),
    ]


def test_a_reopen_is_a_cycle_of_its_own() -> None:
    """Cycle 1 (Mon 09:00): first response 10:00 = 1 h; the next customer messages
    (11:00, 11:10) answered 11:30 = 0.5 h from the first unanswered; closed 12:00 = 3 h.
    Cycle 2 (Wed 16:00): Wed 16-17 1 h + Thu 9-9:30 0.5 h = 1.5 h to the first
    response; closed Thu 10:00 = 2 h. The ticket's first response stays 1 h. Full
    resolution Mon 09:00 to Thu 10:00: 8 + 8 + 8 + 1 = 25 h."""
    hours = BusinessHours.parse("Europe/Berlin", OFFICE)
    sla = ticket_sla(_reopened_log(), hours)
    one, two = sla.cycles
    assert (one.first_response, one.next_responses, one.time_to_close) == (
        HOUR, (0.5 * HOUR,), 3 * HOUR)
    assert (two.number, two.first_response, two.next_responses, two.time_to_close) == (
        2, 1.5 * HOUR, (), 2 * HOUR)
    assert sla.first_response == HOUR
    assert sla.reopen_first_responses == (1.5 * HOUR,)
    assert sla.full_resolution == 25 * HOUR


def test_a_holiday_counts_nothing() -> None:
    """The same ticket with Tuesday 2026-12-01 a holiday: full resolution 25 - 8 = 17 h."""
    hours = BusinessHours.parse("Europe/Berlin", {**OFFICE, "holidays": ["2026-12-01"]})
    assert ticket_sla(_reopened_log(), hours).full_resolution == 17 * HOUR


def test_a_customer_reply_on_a_closed_ticket_reopens_it() -> None:
    """Without a status activity, mail on a closed ticket starts cycle 2 at once; around
    the clock (no hours) business time is real time."""
    hours = BusinessHours.parse("UTC", {})
    at = datetime(2026, 12, 1, 8, tzinfo=UTC)
    log = [Activity("created", at), Activity("status", at.replace(hour=9), "closed"),
           Activity("customer_message", at.replace(hour=12)),
           Activity("agent_reply", at.replace(hour=12, minute=45))]
    sla = ticket_sla(log, hours)
    assert [c.first_response for c in sla.cycles] == [None, 2700]
    assert sla.first_resolution == HOUR and sla.full_resolution is None


def test_an_open_ticket_has_no_close() -> None:
    sla = ticket_sla([Activity("created", berlin(2026, 11, 30, 9))], BusinessHours())
    assert (sla.first_response, sla.first_resolution, sla.full_resolution) == (None, None,
                                                                                None)


@pytest.mark.parametrize(("zone", "hours", "message"), [
    ("Mars/Olympus", {}, "time zone"), ("UTC", {"monday": []}, "unknown day"),
    ("UTC", {"mon": [["17:00", "09:00"]]}, "ends before"),
    ("UTC", {"mon": [["9", "17:00"]]}, "HH:MM"), ("UTC", {"mon": [["09:00", "24:30"]]}, "time"),
])
def test_bad_hours(zone: str, hours: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessHours.parse(zone, hours)  # type: ignore[arg-type]


def test_percentiles() -> None:
    """Linear between closest ranks: p50 of 1..4 is 2.5; p90 of 10, 20, 30, 40, 50 is
    40 + 0.6 * 10 = 46 (rank 0.9 * 4 = 3.6)."""
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([10, 20, 30, 40, 50], 90) == pytest.approx(46)
    assert percentile([], 50) is None and percentile([7], 90) == 7


def test_matches_counting_minute_by_minute() -> None:
    """Random spans over a DST change and a holiday agree with a brute-force count of
    the minutes whose local time falls in working hours (minute-aligned instants)."""
    week = {**OFFICE, "sat": [["10:00", "12:00"], ["13:00", "24:00"]],
            "holidays": ["2026-10-26"]}
    hours = BusinessHours.parse("Europe/Berlin", week)
    spans = {0: [(540, 1020)], 1: [(540, 1020)], 2: [(540, 1020)], 3: [(540, 1020)],
             4: [(540, 1020)], 5: [(600, 720), (780, 1440)]}

    def working(moment: datetime) -> bool:
        local = moment.astimezone(BERLIN)
        if local.date().isoformat() == "2026-10-26":
            return False
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in spans.get(local.weekday(), []))

    rng = random.Random(7)
    origin = datetime(2026, 10, 20, tzinfo=UTC)  # DST ends 2026-10-25 in Berlin
    for _ in range(40):
        start = origin + timedelta(minutes=rng.randrange(14 * 24 * 60))
        end = start + timedelta(minutes=rng.randrange(4 * 24 * 60))
        minutes = sum(working(start + timedelta(minutes=m))
                      for m in range(int((end - start).total_seconds() // 60)))
        assert hours.seconds_between(start, end) == minutes * 60, (start, end)
