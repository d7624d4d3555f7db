"""Admission: whether, as what and where a message will be logged, from headers alone.

``admit`` stores nothing, so a connected inbox can ask it before fetching a body, and
``core.pipeline.ingest`` asks it before storing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts, tracked_sends
from core.audit import NotLoggedReason
from core.errors import SenderAuthUnavailable, SenderNotAuthenticated
from core.mail.bulk import automatic_reason
from core.mail.parsing import ParsedMessage
from core.mail.threads import ThreadKey, thread_keys
from core.routing import Privacy, Route, contact_candidates, route
from core.sender_auth import (
    Action,
    AuthResult,
    Claim,
    Decision,
    DmarcResult,
    SenderAuthPolicy,
    decide,
)
from core.sender_auth._names import normalize_domain
from core.storage.models import (
    Contact,
    Email,
    EmailContact,
    Portal,
    ThreadRef,
    TrackedSend,
    User,
    utcnow,
)
from core.tracking import send_tokens_in_html
from core.types import Direction, Envelope, MessageId, Source, ThreadReason

# Sources that log mail without a user asking for that message: only these are refused
# by the bulk and automatic-mail heuristics (SPEC "Explicit logging wins"). BCC, a
# forward to the logging address, one-click logging and a CRM send are a user's own
# request, and are logged whatever the heuristics say (they still create no contacts).
AUTOMATIC_SOURCES = frozenset({Source.RULE, Source.SYNC})


@dataclass(frozen=True)
class Display:
    """What a timeline shows of a message, worked out in ``prepare`` (in a thread)."""

    reply_text: str
    html: str  # sanitized


@dataclass(frozen=True)
class Forwarded:
    """The original a user forwarded, recovered from the forward, as a message."""

    parsed: ParsedMessage
    message_id: MessageId
    synthetic_id: bool
    display: Display


@dataclass(frozen=True)
class Admission:
    """The decision on one message.

    ``parsed``/``message_id`` are what gets logged: the message itself, or for a
    forward the original inside it. ``refusal`` is set when nothing will be logged;
    ``existing`` when the message is logged already (a new source is all it adds).
    """

    route: Route
    parsed: ParsedMessage
    message_id: MessageId | None
    existing: Email | None
    thread: tuple[int, ThreadReason] | None
    people: dict[str, str]
    automatic: str | None  # why it is bulk or automatic mail, if it is
    refusal: tuple[NotLoggedReason, str] | None
    tracked: tuple[TrackedSend, ...] = ()  # tracked sends whose pixel the HTML carries
    # Other threads this message shows to be the same conversation as ``thread`` (a reply
    # logged before the message that links two halves): ``ingest`` merges them into it.
    merged: tuple[int, ...] = ()
    # Sender authentication as kept on the email (``Email.auth``), or None when nothing
    # was checked (see ``_judge``).
    auth: dict[str, Any] | None = None

    @property
    def will_log(self) -> bool:
        return self.refusal is None


def _forward_route(how: Route, original: ParsedMessage, users: dict[str, User]) -> Route:
    """A user forwarded an email: incoming from its sender, or the user's own sent mail.

    A forward the user wrote keeps its source and its privacy rule: an explicit forward
    (BCC route) is logged as a forward, an inbox rule's ``FW:`` stays rule mail that must
    tie to a logged thread.
    """
    source = Source.FORWARD if how.source is Source.BCC else how.source
    sender = users.get(original.from_.key) if original.from_ is not None else None
    if sender is not None:
        return Route(sender, source, Direction.OUTGOING, how.privacy)
    return Route(how.user, source, Direction.INCOMING, how.privacy)


def _reads_the_original(how: Route) -> bool:
    """Whether a forward's original is what gets logged: a user forwarded it by hand, or
    an Exchange inbox rule forwarded it as a new ``FW:`` from the user (rule mail)."""
    return how.source is Source.BCC or (
        how.source is Source.RULE and how.direction is Direction.OUTGOING)


async def admit(
    session: AsyncSession, portal: Portal, parsed: ParsedMessage, envelope: Envelope,
    bcc_domain: str, *, message_id: MessageId | None = None,
    forwarded: Forwarded | None = None,
) -> Admission:
    """Decide, without storing anything, whether ``ingest`` would log this message.

    Needs only the headers (and, for a forward, the recovered original). Raises
    SenderNotAllowed when no portal user sent, forwarded or synced it;
    SenderNotAuthenticated / SenderAuthUnavailable when the portal's ``sender_auth``
    policy refuses it (or cannot decide yet) as a portal user's mail.
    """
    users = await accounts.users_by_address(session, portal.id)
    how = route(parsed, envelope, users, inbox_log_mode=portal.inbox_log_mode)
    # The check proved (or not) the From of the message as it arrived: judge the claim
    # the outer message makes, before a forward's original takes its place.
    checked = _as_routed(envelope.auth, parsed, how)
    decision = _judge(portal, how, envelope, checked)
    message_id = message_id or parsed.message_id
    keys_of_outer: list[ThreadKey] = []
    if forwarded is not None and _reads_the_original(how):
        if how.source is Source.RULE:
            # An inline original has lost its references; the rule's FW: may carry them.
            keys_of_outer = thread_keys(parsed)
        how = _forward_route(how, forwarded.parsed, users)
        parsed, message_id = forwarded.parsed, forwarded.message_id

    existing = None if message_id is None else await session.scalar(
        select(Email).where(Email.portal_id == portal.id, Email.message_id == message_id))
    sends = await tracked_sends.by_tokens(session, portal.id, send_tokens_in_html(parsed.html))
    if existing is None and how.direction is Direction.OUTGOING:
        existing = await _tracked_copy(session, sends)
    automatic = automatic_reason(parsed) if how.direction is Direction.INCOMING else None
    if existing is not None and existing.deleted_at is not None:
        return Admission(how, parsed, message_id, existing, None, {}, automatic, (
            NotLoggedReason.DELETED, "this message was deleted; restore it to see it again"))
    hits = await _find_threads(session, portal.id, [*thread_keys(parsed), *keys_of_outer])
    found = hits[0] if hits else await _thread_of_tracked(session, sends)
    detached = decision is not None and decision.action is Action.DETACH
    if detached:
        # A reply "from a contact" whose domain's DMARC says reject/quarantine failed:
        # it may be a forgery, and joins no thread.
        found, hits = None, []
    people, blocked = contact_candidates(parsed, how.direction, users, bcc_domain,
                                         portal.never_log)
    # Re-using an old email to write to new people is a new conversation.
    if (found is not None and how.direction is Direction.OUTGOING and people
            and not await _thread_has_any(session, found[0], portal.id, people)):
        found, hits = None, []
    merged: tuple[int, ...] = ()
    if found is not None and len(hits) > 1 and existing is None:
        joined = await _same_conversation(session, found[0], [t for t, _ in hits[1:]],
                                          users, bcc_domain)
        if joined:
            # The oldest thread lives on: its id is the one already known longest.
            target = min(found[0], *joined)
            merged = tuple(t for t in (found[0], *joined) if t != target)
            found = (target, found[1])
    # The heuristics refuse only what an automatic source brings: explicit logging wins.
    limited = automatic if how.source in AUTOMATIC_SOURCES else None
    refusal = None if existing is not None else await _refusal(
        session, portal.id, how.privacy, found is not None, people, blocked, limited)
    if refusal is None and existing is None and found is not None and limited is not None:
        refusal = await _auto_reply_loop(session, found[0], parsed)
    if detached and decision is not None and refusal is not None and (
            refusal[0] is NotLoggedReason.NOT_IN_THREAD):
        # Thread-only mail (a forwarding rule's copy) that may not join its thread: the
        # entry says why, DMARC, not "no thread".
        refusal = (NotLoggedReason.NOT_AUTHENTICATED, decision.reason)
    return Admission(how, parsed, message_id, existing, found, people, automatic, refusal,
                     tuple(sends), merged, _auth_json(portal, checked, decision))


def _as_routed(auth: AuthResult | None, parsed: ParsedMessage, how: Route
               ) -> AuthResult | None:
    """``auth``, unless the ``From`` domain it checked is not the one of the ``From``
    routing read (then a DMARC permerror that nothing vouches for). The two read the
    header apart (sender_auth._headers, core.mail.parsing); should they ever disagree, an
    attacker's own domain would be the one proven and the user's the one logged."""
    if auth is None or how.direction is not Direction.OUTGOING or parsed.from_ is None:
        return auth
    routed = normalize_domain(parsed.from_.email.rpartition("@")[2])
    if auth.dmarc.from_domain == routed:
        return auth
    why = (f"the From domain checked ({auth.dmarc.from_domain or 'none'}) is not the "
           f"one the message is logged under ({routed or 'none'})")
    return replace(auth, dmarc=replace(auth.dmarc, result=DmarcResult.PERMERROR,
                                       explanation=why),
                   arc=replace(auth.arc, vouched=False))


def _judge(portal: Portal, how: Route, envelope: Envelope,
           auth: AuthResult | None) -> Decision | None:
    """The portal's ``sender_auth`` verdict on mail at the logging address, or None for
    mail that entered otherwise (the extension, sync, a CRM send: authenticated by their
    tokens). Mail claiming a portal user (outgoing) must be proven under ``enforce``;
    mail from a contact (a forwarding rule's incoming copy) is judged for threading.
    Raises SenderNotAuthenticated (550) or SenderAuthUnavailable (451)."""
    if envelope.on_behalf_of is not None:
        return None
    claim = Claim.PORTAL_USER if how.direction is Direction.OUTGOING else Claim.CONTACT
    decision = decide(auth, SenderAuthPolicy(portal.sender_auth), claim)
    if decision.action is Action.REFUSE:
        raise SenderNotAuthenticated(decision)
    if decision.action is Action.TEMPFAIL:
        raise SenderAuthUnavailable(decision)
    return decision


def _auth_json(portal: Portal, auth: AuthResult | None,
               decision: Decision | None) -> dict[str, Any] | None:
    if auth is None or decision is None or portal.sender_auth == "off":
        return None
    return {**auth.as_json(), "policy": portal.sender_auth,
            "decision": str(decision.action),
            "would": None if decision.would is None else str(decision.would),
            "failed_check": None if decision.failed_check is None
            else str(decision.failed_check)}


async def _tracked_copy(session: AsyncSession, sends: list[TrackedSend]) -> Email | None:
    """The email a tracked send was logged as before its copy arrived (``/sent`` without
    a Message-ID): one email, never two. An old tracked email quoted in a new one has a
    real Message-ID already, so it is not mistaken for this message."""
    for send in sends:
        if send.email_id is not None:
            email = await session.get(Email, send.email_id)
            if email is not None and email.synthetic_message_id:
                return email
    return None


async def _thread_of_tracked(
    session: AsyncSession, sends: list[TrackedSend]
) -> tuple[int, ThreadReason] | None:
    """A reply quoting a tracked email's HTML carries its pixel: join that email's thread."""
    for send in sends:
        if send.email_id is not None:
            email = await session.get(Email, send.email_id)
            if email is not None and email.deleted_at is None:
                return email.thread_id, ThreadReason.TRACKING_TOKEN
    return None


async def _find_threads(
    session: AsyncSession, portal_id: int, keys: list[ThreadKey]
) -> list[tuple[int, ThreadReason]]:
    """Every thread that claims one of ``keys``, the nearest relative's first, each once."""
    if not keys:
        return []
    rows = await session.execute(
        select(ThreadRef.message_id, ThreadRef.thread_id).where(
            ThreadRef.portal_id == portal_id,
            ThreadRef.message_id.in_([k.message_id for k in keys]),
        )
    )
    found = {message_id: thread_id for message_id, thread_id in rows}
    hits: dict[int, ThreadReason] = {}
    for key in keys:
        if key.message_id in found:
            hits.setdefault(found[key.message_id], key.reason)
    return list(hits.items())


async def _same_conversation(
    session: AsyncSession, nearest: int, others: list[int], users: dict[str, User],
    bcc_domain: str,
) -> list[int]:
    """The threads among ``others`` to merge with ``nearest``, as one message references
    both (JWZ: a reference chain is one conversation, whatever order its parts came in).

    Only threads that share a participant other than the portal's users are merged: a
    thread started anew because a user re-used an old email to write to new people
    (see ``admit``) stays apart when a reply references both. Nor is a thread merged
    that holds an email a user moved by hand: their correction stands.
    """
    ids = [nearest, *others]
    rows = await session.execute(
        select(Email.thread_id, Email.from_email, Email.to, Email.cc, Email.thread_reason)
        .where(Email.thread_id.in_(ids)))
    people: dict[int, set[str]] = {t: set() for t in ids}
    manual: set[int] = set()
    logging_domain = bcc_domain.lower()
    for thread_id, sender, to, cc, reason in rows:
        if reason == ThreadReason.MANUAL.value:
            manual.add(thread_id)
        for address in (sender, *(a.get("email", "") for a in [*(to or []), *(cc or [])])):
            key = (address or "").lower()
            if key and key not in users and key.rpartition("@")[2] != logging_domain:
                people[thread_id].add(key)
    if nearest in manual:
        return []
    joined: list[int] = []
    group = set(people[nearest])
    pending = [t for t in others if t not in manual]
    while grown := [t for t in pending if people[t] & group]:
        for thread_id in grown:
            group |= people[thread_id]
            joined.append(thread_id)
            pending.remove(thread_id)
    return joined


async def _thread_has_any(
    session: AsyncSession, thread_id: int, portal_id: int, people: dict[str, str]
) -> bool:
    """Whether any of these addresses is a contact on the thread's emails."""
    found = await session.scalar(
        select(EmailContact.contact_id)
        .join(Email, Email.id == EmailContact.email_id)
        .join(Contact, Contact.id == EmailContact.contact_id)
        .where(Email.thread_id == thread_id, Contact.portal_id == portal_id,
               Contact.email.in_(people))
        .limit(1)
    )
    return found is not None


# An auto-responder answering an auto-responder must not flood a timeline: past this many
# automatic emails from one sender in one thread within a day, the rest that arrive from
# an automatic source are not logged.
AUTOMATIC_PER_THREAD_PER_DAY = 3


async def _auto_reply_loop(
    session: AsyncSession, thread_id: int, parsed: ParsedMessage
) -> tuple[NotLoggedReason, str] | None:
    sender = parsed.from_.email if parsed.from_ is not None else ""
    recent = await session.scalar(select(func.count()).select_from(Email).where(
        Email.thread_id == thread_id, Email.automatic.is_not(None),
        func.lower(Email.from_email) == sender.lower(),
        Email.created_at > utcnow() - timedelta(days=1)))
    if (recent or 0) >= AUTOMATIC_PER_THREAD_PER_DAY:
        return (NotLoggedReason.BULK,
                f"automatic mail: more than {AUTOMATIC_PER_THREAD_PER_DAY} a day in this thread")
    return None


async def _refusal(
    session: AsyncSession, portal_id: int, privacy: Privacy, in_thread: bool,
    people: dict[str, str], blocked: bool, automatic: str | None,
) -> tuple[NotLoggedReason, str] | None:
    """Why a new message must not be logged, or None. ``automatic`` is given only for
    mail from an automatic source: what a user logged is never refused as bulk."""
    if blocked and not people:
        return NotLoggedReason.NEVER_LOG, "on the never-log list"
    if in_thread or privacy is Privacy.NONE:
        return None
    if automatic is not None:
        return NotLoggedReason.BULK, f"automatic mail ({automatic}) outside a logged thread"
    if privacy is Privacy.THREAD_OR_CONTACT and people and await session.scalar(
            select(Contact.id).where(Contact.portal_id == portal_id,
                                     Contact.email.in_(people)).limit(1)) is not None:
        return None
    if privacy is Privacy.THREAD_OR_CONTACT:
        return NotLoggedReason.NOT_IN_THREAD, "not part of a logged thread and no known contact"
    return NotLoggedReason.NOT_IN_THREAD, "not part of a logged thread"
