"""Who logged a message, how it came, which way it went, and who its contacts are.

Pure functions over a parsed message, the envelope and the portal's user addresses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core.errors import SenderNotAllowed
from core.mail import forwarding_rules as forwarding
from core.mail.parsing import Address, ParsedMessage
from core.storage.models import User
from core.types import Direction, Envelope, InboxLogMode, Source


class Privacy(enum.StrEnum):
    """What must hold for mail that did not come from a user's own hand to be logged."""

    NONE = "none"                      # the user sent it, or asked to log it
    THREAD = "thread"                  # it must tie to a logged thread
    THREAD_OR_CONTACT = "thread_or_contact"  # ... or involve a known contact


@dataclass(frozen=True)
class Route:
    user: User
    source: Source
    direction: Direction
    privacy: Privacy


def sync_privacy(inbox_log_mode: str) -> Privacy:
    """What synced mail must satisfy under a portal's ``inbox_log_mode``
    (``InboxLogMode``): tie to a logged thread, or under ``known_contacts`` also
    involve a known contact. The one place the mode is read."""
    if inbox_log_mode == InboxLogMode.KNOWN_CONTACTS:
        return Privacy.THREAD_OR_CONTACT
    return Privacy.THREAD


def route(
    parsed: ParsedMessage, envelope: Envelope, users: dict[str, User], *,
    inbox_log_mode: str = InboxLogMode.REPLIES,
) -> Route:
    """How this message reached the portal; raises SenderNotAllowed when no user sent it.

    On behalf of a user (extension, sync, CRM send): outgoing when From is a user, else
    incoming; synced incoming mail falls under the privacy rule (``inbox_log_mode``).
    At the logging address: From a user is the user's own mail (BCC); else a forwarding
    rule when the envelope sender, Resent-From or a forwarding header names a user
    (``forwarding_user``), logged only when it ties to a logged thread; else
    SenderNotAllowed saying which candidates were seen (``not_a_user``).
    """
    from_user = users.get(parsed.from_.key) if parsed.from_ is not None else None
    if envelope.on_behalf_of is not None:
        user = users.get(envelope.on_behalf_of.lower())
        if user is None:
            raise SenderNotAllowed(f"{envelope.on_behalf_of} is not a user of this account")
        source = envelope.source_hint or Source.EXTENSION
        # Synced mail, sent or received, is logged only under the privacy rule; what a
        # user asked to log or sent from the CRM always is.
        privacy = sync_privacy(inbox_log_mode) if source is Source.SYNC else Privacy.NONE
        if from_user is not None:
            return Route(from_user, source, Direction.OUTGOING, privacy)
        return Route(user, source, Direction.INCOMING, privacy)
    if from_user is not None:
        if envelope.source_hint is None and forwarding.made_by_inbox_rule(parsed, users):
            # Not the user's hand: an inbox rule's "Forward to" writes a new message from
            # the user for every message it matches. It is rule mail, under the privacy rule.
            return Route(from_user, Source.RULE, Direction.OUTGOING, Privacy.THREAD)
        return Route(from_user, envelope.source_hint or Source.BCC, Direction.OUTGOING,
                     Privacy.NONE)
    forwarder = forwarding_user(parsed, envelope, users)
    if forwarder is not None:
        return Route(forwarder, envelope.source_hint or Source.RULE, Direction.INCOMING,
                     Privacy.THREAD)
    raise SenderNotAllowed(not_a_user(parsed, envelope))


def forwarding_user(parsed: ParsedMessage, envelope: Envelope,
                    users: dict[str, User]) -> User | None:
    """The user whose mailbox a forwarding rule forwarded this from, or None.

    The first claim (``core.mail.forwarding_rules.claims``, most trusted first) that names
    a user decides. A claim is only that: it makes the message this user's rule mail,
    held to the privacy rule, and nothing more.
    """
    for claim in forwarding.claims(parsed, envelope):
        for candidate in forwarding.matches(claim):
            if candidate in users:
                return users[candidate]
    return None


# The refusal fits one SMTP reply line (``smtp_ingest.replies.one_line`` keeps 400).
_REFUSAL_BUDGET = 390


def not_a_user(parsed: ParsedMessage, envelope: Envelope) -> str:
    """Why no user sent or forwarded this, precisely: From, and every forwarding-mailbox
    candidate seen (envelope sender, Resent-From, forwarding headers), none a user."""
    sender = parsed.from_.email if parsed.from_ else "(no From)"
    seen = forwarding.claims(parsed, envelope)
    text = f"{sender} is not a user of this account"
    if not seen:
        return text + ", and no envelope sender or forwarding header names another mailbox"
    text += ", nor is any forwarding mailbox the message names: "
    for n, claim in enumerate(seen):
        item = ("; " if n else "") + forwarding.describe(claim, envelope.logging_address)
        rest = len(seen) - n
        if len(text) + len(item) > _REFUSAL_BUDGET - (12 if rest > 1 else 0):
            return text + f"; and {rest} more"
        text += item
    return text


def never_logged(key: str, never_log: list[str]) -> bool:
    """Whether an address (lower-case) is on the never-log list, itself or by domain."""
    domain = key.rpartition("@")[2]
    return any(entry in (key, domain) or domain.endswith("." + entry)
               for entry in never_log if entry)


def contact_candidates(
    parsed: ParsedMessage, direction: Direction, users: dict[str, User],
    bcc_domain: str, never_log: list[str],
) -> tuple[dict[str, str], bool]:
    """Contact addresses (lower-case -> display name) and whether never-log removed any.

    Outgoing mail: its To and Cc. Incoming: its sender first, then To and Cc. Never a
    user, a logging address, or an address or domain on the never-log list.
    """
    addresses: list[Address] = [*parsed.to, *parsed.cc]
    if direction is Direction.INCOMING and parsed.from_ is not None:
        addresses.insert(0, parsed.from_)
    people: dict[str, str] = {}
    removed = False
    for address in addresses:
        key = address.key
        if ("@" not in key or len(key) > 320 or key in users
                or key.rpartition("@")[2] == bcc_domain.lower()):
            continue
        if never_logged(key, never_log):
            removed = True
            continue
        people.setdefault(key, address.name[:200])
    return people, removed
