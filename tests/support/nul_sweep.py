"""For the NUL sweeps (tests/extension_api/ and tests/pages/ test_control_characters.py):
the value they post, and the server on PostgreSQL they post it to (PostgreSQL's text
columns refuse NUL, which SQLite stores)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.pages.test_tickets import Desk, make_desk
from tests.support import postgres
from tests.support.smtp_recorder import SmtpRecorder

NUL = "a\x00b"


@contextmanager
def desk_on_postgres(folder: Path, relay: SmtpRecorder) -> Iterator[tuple[Desk, int]]:
    """A server of its own on a database of its own in PostgreSQL, mail going out through
    ``relay``; a team inbox's desk on it and the id of a ticket a customer opened. Both
    are gone afterwards."""
    with postgres.inboxlog_server(folder, relay.serve_args()) as running:
        desk = make_desk(running)
        ticket_id, _ = desk.open_ticket("Printer on fire")
        yield desk, ticket_id
