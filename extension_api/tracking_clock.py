"""The clock that stamps tracking hits, and the file clock that tests move by hand.

In production it is the system clock, and the shipped ``inboxlog`` command has no switch
to change it. The suite starts its servers through a test-only entry point
(``python -m tests.support.loopback_only serve …``, not part of the package), which
calls :func:`use_clock` with :func:`file_clock` before the server starts: each hit is
then stamped with the system time plus the number of seconds written in a file, read
again for every hit, so a test moves the time a hit arrives, minutes or hours after its
send, without sleeping. It moves only hits' times (and so whether a link has expired,
``--tracking-link-days``), never tokens, sessions or stored sends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from core.storage.models import utcnow

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_clock: Clock = utcnow


def use_clock(clock: Clock) -> None:
    """Date every later hit with ``clock`` (called in-process by test entry points only)."""
    global _clock
    log.warning("TEST CLOCK: tracking hits are dated by %r", clock)
    _clock = clock


def hit_clock() -> Clock:
    """The clock hits are dated by: the system clock unless a test replaced it."""
    return _clock


def file_clock(path: Path) -> Clock:
    """The system time plus the seconds written in ``path`` (0 when it holds no usable
    number, or one no date can take: a hit is dated, never refused)."""

    def now() -> datetime:
        system = utcnow()
        try:
            return system + timedelta(seconds=float(path.read_text() or 0))
        except (OSError, ValueError, OverflowError):  # no file, no number, no such date
            return system

    return now
