"""Whose inbox a connection is: the key of the per-user and per-portal network limits."""

from __future__ import annotations

from typing import NamedTuple

from core.storage.models import Inbox


class Owner(NamedTuple):
    """Whose inbox a connection is, for the per-user and per-portal network limits (a
    team inbox's mailbox counts as a user of its own: ``-team_inbox_id``)."""

    portal_id: int
    user_id: int

    @classmethod
    def team(cls, portal_id: int, team_inbox_id: int) -> Owner:
        return cls(portal_id, -team_inbox_id)

    @classmethod
    def of(cls, inbox: Inbox) -> Owner:
        if inbox.user_id is not None:
            return cls(inbox.portal_id, inbox.user_id)
        assert inbox.team_inbox_id is not None
        return cls.team(inbox.portal_id, inbox.team_inbox_id)
