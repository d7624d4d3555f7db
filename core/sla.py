"""SLA figures of tickets in business hours: pure code over a ticket's activity log.

``BusinessHours`` is a team inbox's working week in its time zone (``TeamInbox.time_zone``
and ``business_hours``: ``{"mon": [["09:00", "17:00"]], ..., "holidays": ["2026-12-25"]}``;
no weekday at all means around the clock). ``seconds_between`` counts the business
seconds between two instants, on the real clock: a working day that a DST change
shortens or lengthens counts what it really lasts.

``ticket_sla`` reads the activity log (``core.tickets.activity.Kind``: ``created``,
``customer_message``, ``agent_reply``, ``status``) into response cycles. The first cycle
starts at ``created``; each reopening (``status`` closed -> open, or a customer message
on a closed ticket) starts another, so a reopened ticket never stretches or shortens
the first response time, and each cycle gets a first response of its own:

- **first response**: from the cycle's start to the first agent reply after it;
- **next response**: after that, from the first customer message an agent has not
  answered yet to the next agent reply (one figure per exchange);
- **time to close**: from the cycle's start to its close. The ticket's
  ``first_resolution`` is the first cycle's; ``full_resolution`` runs from creation to
  the last close (None while open).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock(text: str) -> tuple[int, int]:
    """``HH:MM`` as (hours, minutes); ``24:00`` is the end of the day."""
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"not a time HH:MM: {text!r}")
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 23 and 0 <= m <= 59) and (h, m) != (24, 0):
        raise ValueError(f"not a time of day: {text!r}")
    return h, m


@dataclass(frozen=True)
class BusinessHours:
    """Working hours per weekday (0 Monday) in ``zone``, as (start, end) minutes since
    midnight, end up to 1440; ``holidays`` are local dates with no working hours."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    week: Mapping[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()
    # A local day's working spans in UTC, computed once (reports ask for the same days
    # of thousands of tickets).
    _spans: dict[date, tuple[tuple[datetime, datetime], ...]] = field(
        default_factory=dict, compare=False, repr=False)
    # Business seconds of the days before a local day, from the first day asked for
    # (negative before it): a duration is then a difference, whatever its length.
    _before: dict[date, float] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, time_zone: str, hours: Mapping[str, Any] | None) -> BusinessHours:
        """A team inbox's settings; ValueError naming what is wrong."""
        try:
            zone = ZoneInfo(time_zone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone: {time_zone!r}") from None
        week: dict[int, tuple[tuple[int, int], ...]] = {}
        holidays: set[date] = set()
        for key, value in (hours or {}).items():
            if key == "holidays":
                holidays.update(date.fromisoformat(str(day)) for day in value)
                continue
            if key not in DAYS:
                raise ValueError(f"business_hours: unknown day {key!r} (one of "
                                 f"{', '.join(DAYS)}, holidays)")
            spans = []
            for start_text, end_text in value:
                sh, sm = _clock(start_text)
                eh, em = _clock(end_text)
                start, end = sh * 60 + sm, eh * 60 + em
                if end <= start:
                    raise ValueError(f"business_hours.{key}: {start_text}-{end_text} ends "
                                     "before it starts")
                spans.append((start, end))
            week[DAYS.index(key)] = tuple(sorted(spans))
        return cls(zone, week, frozenset(holidays))

    @property
    def always(self) -> bool:
        """No working hours given: around the clock, every day."""
        return not self.week

    def _local(self, day: date, minutes: int) -> datetime:
        """The instant of ``minutes`` past midnight of ``day`` in the zone, in UTC. A
        wall time a DST change skips or repeats is taken as its first reading."""
        wall = datetime.combine(day, time(0)) + timedelta(minutes=minutes)
        return wall.replace(tzinfo=self.zone).astimezone(UTC)

    def spans(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working spans of a local day, as UTC instants (none on a holiday)."""
        found = self._spans.get(day)
        if found is None:
            found = () if day in self.holidays else tuple(
                (self._local(day, start),
                 self._local(day + timedelta(days=1), 0) if end == 1440
                 else self._local(day, end))
                for start, end in self.week.get(day.weekday(), ()))
            self._spans[day] = found
        return found

    def _day_total(self, day: date) -> float:
        return sum((closes - opens).total_seconds() for opens, closes in self.spans(day))

    def _days_before(self, day: date) -> float:
        before = self._before
        if not before:
            before[day] = 0.0
            return 0.0
        if day in before:
            return before[day]
        first, last = min(before), max(before)
        while last < day:
            before[last + timedelta(days=1)] = before[last] + self._day_total(last)
            last += timedelta(days=1)
        while first > day:
            before[first - timedelta(days=1)] = (before[first]
                                                 - self._day_total(first - timedelta(days=1)))
            first -= timedelta(days=1)
        return before[day]

    def _until(self, moment: datetime) -> float:
        """Business seconds from the origin of ``_before`` to ``moment`` (UTC): the days
        before its local day, and what of that day's spans precedes it."""
        day = moment.astimezone(self.zone).date()
        total = self._days_before(day)
        for opens, closes in self.spans(day):
            if moment > opens:
                total += (min(moment, closes) - opens).total_seconds()
        return total

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Business seconds from ``start`` to ``end`` (aware datetimes); 0 when ``end``
        is not after ``start``."""
        if end <= start:
            return 0.0
        if self.always:
            return (end - start).total_seconds()
        return max(0.0, self._until(end.astimezone(UTC)) - self._until(start.astimezone(UTC)))


class ActivityLike(Protocol):
    """What SLAs read of a ``TicketActivity`` row."""

    @property
    def kind(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def to_value(self) -> str | None: ...


@dataclass(frozen=True)
class Activity:
    """An activity as plain data (tests, reports that select columns)."""

    kind: str
    at: datetime
    to_value: str | None = None


@dataclass(frozen=True)
class Cycle:
    """One response cycle: from creation or a reopening to the close that ends it."""

    number: int
    started_at: datetime
    first_response_at: datetime | None
    first_response: float | None  # business seconds
    next_responses: tuple[float, ...]
    closed_at: datetime | None
    time_to_close: float | None


@dataclass(frozen=True)
class TicketSla:
    cycles: tuple[Cycle, ...]
    full_resolution: float | None  # creation to the last close; None while not closed

    @property
    def first_response(self) -> float | None:
        """The first cycle's: reopenings never change it."""
        return self.cycles[0].first_response if self.cycles else None

    @property
    def first_resolution(self) -> float | None:
        return self.cycles[0].time_to_close if self.cycles else None

    @property
    def next_responses(self) -> tuple[float, ...]:
        return tuple(r for c in self.cycles for r in c.next_responses)

    @property
    def reopen_first_responses(self) -> tuple[float, ...]:
        return tuple(c.first_response for c in self.cycles[1:] if c.first_response is not None)


@dataclass
class _Open:
    number: int
    started_at: datetime
    waiting_since: datetime | None
    first_response_at: datetime | None = None
    first_response: float | None = None
    next_responses: list[float] = field(default_factory=list)


def ticket_sla(activities: Iterable[ActivityLike], hours: BusinessHours) -> TicketSla:
    """The SLA figures of one ticket from its activity log in order (module docstring)."""
    cycles: list[Cycle] = []
    current: _Open | None = None
    created_at: datetime | None = None
    last_close: datetime | None = None

    def close(at: datetime) -> None:
        nonlocal current, last_close
        assert current is not None
        cycles.append(Cycle(current.number, current.started_at, current.first_response_at,
                            current.first_response, tuple(current.next_responses), at,
                            hours.seconds_between(current.started_at, at)))
        current, last_close = None, at

    def start(at: datetime) -> None:
        nonlocal current
        current = _Open(len(cycles) + 1, at, waiting_since=at)

    for activity in activities:
        kind, at = activity.kind, activity.at
        if kind == "created" and created_at is None and current is None and not cycles:
            created_at = at
            start(at)
        elif created_at is None:
            continue  # nothing counts before the ticket exists
        elif kind == "customer_message":
            if current is None:
                start(at)  # mail on a closed ticket reopens it
            elif current.waiting_since is None:
                current.waiting_since = at
        elif kind == "agent_reply" and current is not None and current.waiting_since:
            took = hours.seconds_between(current.waiting_since, at)
            if current.first_response_at is None:
                current.first_response_at, current.first_response = at, took
            else:
                current.next_responses.append(took)
            current.waiting_since = None
        elif kind == "status" and activity.to_value == "closed" and current is not None:
            close(at)
        elif kind == "status" and activity.to_value in ("open", "pending") and current is None:
            start(at)
    if current is not None:
        cycles.append(Cycle(current.number, current.started_at, current.first_response_at,
                            current.first_response, tuple(current.next_responses), None, None))
    full = (hours.seconds_between(created_at, last_close)
            if created_at is not None and last_close is not None and current is None else None)
    return TicketSla(tuple(cycles), full)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` (0-100) percentile by linear interpolation between closest ranks (the
    definition of numpy's default and of Excel's PERCENTILE.INC); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
