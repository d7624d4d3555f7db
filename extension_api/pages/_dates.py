"""A day typed into a page (``YYYY-MM-DD``, in a query or a form): one reading of it
for every page that takes one; each page says how it refuses a bad one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from core.errors import InvalidInput


def day(value: str, name: str, *, earliest: date = date.min, latest: date = date.max,
        refuse: Callable[[str], Exception] = InvalidInput) -> date | None:
    """The day ``value`` names; None when it is empty. When it is not a date, or not
    from ``earliest`` to ``latest``, raises ``refuse`` of a sentence naming ``name``."""
    if not value:
        return None
    try:
        found = date.fromisoformat(value)
    except ValueError:
        raise refuse(f"{name} must be a date (YYYY-MM-DD)") from None
    if not earliest <= found <= latest:
        raise refuse(f"{name} must be a date from {earliest} to {latest}")
    return found
