"""The clock that stamps tracking hits, and the test clock that tests move by hand.

In production it is the system clock. ``inboxlog serve --test-clock FILE`` (refused
unless ``INBOXLOG_TEST_MODE=1`` is in the environment) stamps each hit with the system
time plus the number of seconds written in FILE, read again for every hit: a test
moves the time a hit arrives, minutes or hours after its send, without sleeping. It
moves only hits' times (and so whether a link has expired, ``--tracking-link-days``),
never tokens, sessions or stored sends, and it is a float in a
file the operator chose, so at worst it misdates opens on a server started for tests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from core.models import utcnow

log = logging.getLogger(__name__)

TEST_MODE_VARIABLE = "INBOXLOG_TEST_MODE"
Clock = Callable[[], datetime]


class ClockRefused(RuntimeError):
    """--test-clock was given outside test mode."""


def hit_clock(test_clock: Path | None) -> Clock:
    """The system clock, or the test clock reading its offset from ``test_clock``."""
    if test_clock is None:
        return utcnow
    if os.environ.get(TEST_MODE_VARIABLE) != "1":
        raise ClockRefused(
            f"--test-clock is for tests only: set {TEST_MODE_VARIABLE}=1 to use it")
    log.warning("TEST CLOCK: tracking hits are dated by the offset in %s", test_clock)

    def now() -> datetime:
        system = utcnow()
        try:
            return system + timedelta(seconds=float(test_clock.read_text() or 0))
        except (OSError, ValueError, OverflowError):  # no file, no number, no such date
            return system

    return now
