"""Admission: whether, as what and where a message will be logged, from headers alone.

``admit`` stores nothing, so a connected inbox can ask it before fetching a body, and
``core.pipeline.ingest`` asks it before storing. It looks up what it needs (users, the
logged copy, threads, contacts) and leaves each decision to a pure function over those
values: ``choose`` (the message or a forward's original), ``refusal`` (never-log list,
privacy rule), ``auto_reply_refusal``, ``nearest_threads``, ``same_conversation``. For
sync, before any body is fetched, ``core.sync_filter`` spares it the messages it would
certainly refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, cast, func, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from core import accounts, tracked_sends
from core.errors import SenderAuthUnavailable, SenderNotAuthenticated
from core.mail.bulk import automatic_reason
from core.mail.parsing import ParsedMessage
from core.mail.threads import ThreadKey, claimed_ids, thread_keys
from core.preparation import Candidate
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
from core.storage import statements
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
from core.storage.statements import Statement
from core.tracking import send_tokens_in_html
from core.types import (
    Direction,
    Envelope,
    NotLoggedReason,
    Refusal,
    Source,
    ThreadMatch,
    ThreadReason,
)

# Sources that log mail without a user asking for that message: only these are refused
# by the bulk and automatic-mail heuristics (SPEC "Explicit logging wins"). BCC, a
# forward to the logging address, one-click logging and a CRM send are a user's own
# request, and are logged whatever the heuristics say (they still create no contacts).
AUTOMATIC_SOURCES = frozenset({Source.RULE, Source.SYNC})


@dataclass(frozen=True)
class Admission:
    """The decision on one message.

    ``chosen`` is what gets logged: the message itself, or for a forward the original
    inside it. ``refusal`` is set when nothing will be logged; ``existing`` when the
    message is logged already (a new source is all it adds).
    """

    route: Route
    chosen: Candidate
    existing: Email | None
    thread: ThreadMatch | None
    people: dict[str, str]
    automatic: str | None  # why it is bulk or automatic mail, if it is
    refusal: Refusal | None
    tracked: tuple[TrackedSend, ...] = ()  # tracked sends whose pixel the HTML carries
    # Other threads this message shows to be the same conversation as ``thread`` (a reply
    # logged before the message that links two halves): ``ingest`` merges them into it.
    merged: tuple[int, ...] = ()
    # Sender authentication as kept on the email (``Email.auth``), or None when nothing
    # was checked (see ``_judge``).
    auth: dict[str, Any] | None = None
    # A user's own mail that looked like a forward whose original could not be read:
    # why; it is logged as theirs, with this noted (``unread_forward``).
    forward_unread: str | None = None
    # Which of the Message-IDs this message's thread would claim (``claimed_ids``) a
    # thread of the portal claims already, looked up with the thread keys; None when
    # admission did not look (``ingest`` then asks).
    claimed: frozenset[str] | None = None

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


@dataclass(frozen=True)
class Choice:
    """Which message admission logs, routed: ``outer_keys`` are the thread keys of the
    message as it arrived, still worth looking up when its original is logged."""

    route: Route
    chosen: Candidate
    outer_keys: tuple[ThreadKey, ...] = ()
    forward_unread: str | None = None


def choose(how: Route, message: Candidate, original: Candidate | None,
           forward_failure: str | None, users: dict[str, User]) -> Choice:
    """The message to log (pure): a forward's original when a user forwarded it by hand
    or an inbox rule wrote a ``FW:`` of it, else the message itself. A user's own mail
    (BCC) that looks like a forward nobody could read is logged as theirs, noting why."""
    if original is not None and _reads_the_original(how):
        # An inline original has lost its references; the rule's FW: may carry them.
        outer = tuple(thread_keys(message.parsed)) if how.source is Source.RULE else ()
        return Choice(_forward_route(how, original.parsed, users), original, outer)
    unread = forward_failure if how.source is Source.BCC else None
    return Choice(how, message, forward_unread=unread)


async def admit(
    session: AsyncSession, portal: Portal, message: Candidate, envelope: Envelope,
    bcc_domain: str, *, original: Candidate | None = None,
    forward_failure: str | None = None,
) -> Admission:
    """Decide, without storing anything, whether ``ingest`` would log this message.

    Needs only the headers (``Candidate.of_headers``) and, for a forward, the recovered
    ``original``. Raises SenderNotAllowed when no portal user sent, forwarded or synced
    it; SenderNotAuthenticated / SenderAuthUnavailable when the portal's ``sender_auth``
    policy refuses it (or cannot decide yet) as a portal user's mail.
    """
    users = await accounts.users_by_address(session, portal.id)
    how = route(message.parsed, envelope, users, inbox_log_mode=portal.inbox_log_mode)
    # The check proved (or not) the From of the message as it arrived: judge the claim
    # the outer message makes, before a forward's original takes its place.
    checked = _as_routed(envelope.auth, message.parsed, how)
    decision = _judge(portal, how, envelope, checked)
    choice = choose(how, message, original, forward_failure, users)
    how, chosen = choice.route, choice.chosen
    parsed, message_id = chosen.parsed, chosen.message_id

    keys = [*thread_keys(parsed), *choice.outer_keys]
    # The ids a thread claims when this message joins one: read with the logged copy.
    wanted = [*(k.message_id for k in keys),
              *(claimed_ids(parsed, message_id) if message_id is not None else ())]
    existing, read_claims = await _logged_copy_and_claims(
        session, portal.id, message_id, wanted)
    sends = await tracked_sends.by_tokens(session, portal.id, send_tokens_in_html(parsed.html))
    if existing is None and how.direction is Direction.OUTGOING:
        existing = await _tracked_copy(session, sends)
    automatic = automatic_reason(parsed) if how.direction is Direction.INCOMING else None

    claims: dict[str, int] | None = None

    def admission(thread: ThreadMatch | None, people: dict[str, str],
                  refusal: Refusal | None, merged: tuple[int, ...] = ()) -> Admission:
        return Admission(how, chosen, existing, thread, people, automatic, refusal,
                         tuple(sends), merged, _auth_json(portal, checked, decision),
                         choice.forward_unread,
                         None if claims is None else frozenset(claims))

    if existing is not None and existing.deleted_at is not None:
        return admission(None, {}, Refusal(
            NotLoggedReason.DELETED, "this message was deleted; restore it to see it again"))
    claims = read_claims
    hits = nearest_threads(keys, claims)
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
            and not await _thread_has_any(session, found.thread_id, portal.id, people)):
        found, hits = None, []
    merged: tuple[int, ...] = ()
    if found is not None and len(hits) > 1 and existing is None:
        joined = await _same_conversation(session, found.thread_id,
                                          [h.thread_id for h in hits[1:]], users, bcc_domain)
        if joined:
            # The oldest thread lives on: its id is the one already known longest.
            target = min(found.thread_id, *joined)
            merged = tuple(t for t in (found.thread_id, *joined) if t != target)
            found = ThreadMatch(target, found.reason)
    if existing is not None:
        return admission(found, people, None, merged)
    # The heuristics refuse only what an automatic source brings: explicit logging wins.
    limited = automatic if how.source in AUTOMATIC_SOURCES else None
    known_contact = (how.privacy is Privacy.THREAD_OR_CONTACT and found is None
                     and limited is None and bool(people)
                     and await _knows_any(session, portal.id, people))
    refused = refusal(how.privacy, in_thread=found is not None, people=people,
                      blocked=blocked, automatic=limited, known_contact=known_contact)
    if refused is None and found is not None and limited is not None:
        refused = auto_reply_refusal(await _automatic_today(session, found.thread_id, parsed))
    if detached and decision is not None and refused is not None and (
            refused.code is NotLoggedReason.NOT_IN_THREAD):
        # Thread-only mail (a forwarding rule's copy) that may not join its thread: the
        # entry says why, DMARC, not "no thread".
        refused = Refusal(NotLoggedReason.NOT_AUTHENTICATED, decision.reason)
    return admission(found, people, refused, merged)


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
    if auth is None or decision is None or portal.sender_auth == SenderAuthPolicy.OFF:
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
) -> ThreadMatch | None:
    """A reply quoting a tracked email's HTML carries its pixel: join that email's thread."""
    for send in sends:
        if send.email_id is not None:
            email = await session.get(Email, send.email_id)
            if email is not None and email.deleted_at is None:
                return ThreadMatch(email.thread_id, ThreadReason.TRACKING_TOKEN)
    return None


def nearest_threads(keys: list[ThreadKey], claimed: dict[str, int]) -> list[ThreadMatch]:
    """Every thread that claims one of ``keys`` (``claimed``: Message-ID -> thread), the
    nearest relative's first, each once (pure)."""
    hits: dict[int, ThreadReason] = {}
    for key in keys:
        if key.message_id in claimed:
            hits.setdefault(claimed[key.message_id], key.reason)
    return [ThreadMatch(thread_id, reason) for thread_id, reason in hits.items()]


_EMAILS, _REFS = Email.__table__.c, ThreadRef.__table__.c
# Run by the database driver (core.storage.statements): most messages are new, so
# these find nothing, and SQLAlchemy's execution would cost more than the reads.
_LOGGED_COPY = Statement(lambda: select(_EMAILS.id).where(
    _EMAILS.portal_id == bindparam("portal_id"),
    _EMAILS.message_id == bindparam("message_id")))
_CLAIMS = Statement(lambda ids: select(_REFS.message_id, _REFS.thread_id).where(
    _REFS.portal_id == bindparam("portal_id"), _REFS.message_id.in_(ids)), lists=("ids",))


async def _logged_copy(session: AsyncSession, portal_id: int, message_id: str) -> Email | None:
    """The portal's email with this Message-ID, loaded only when there is one."""
    run = await statements.of_session(session)
    found = await run.first(_LOGGED_COPY, portal_id=portal_id, message_id=message_id)
    return None if found is None else await session.get(Email, found[0])


# Both at once (one round trip on PostgreSQL): the logged copy's id, its first column
# NULL, then the claimed ids with their threads.
_COPY_AND_CLAIMS = Statement(lambda ids: union_all(
    select(cast(null(), _REFS.message_id.type), _EMAILS.id).where(
        _EMAILS.portal_id == bindparam("portal_id"),
        _EMAILS.message_id == bindparam("message_id")),
    select(_REFS.message_id, _REFS.thread_id).where(
        _REFS.portal_id == bindparam("portal_id"), _REFS.message_id.in_(ids))),
    lists=("ids",))


async def _logged_copy_and_claims(
    session: AsyncSession, portal_id: int, message_id: str | None, ids: list[str]
) -> tuple[Email | None, dict[str, int]]:
    """``_logged_copy`` and ``_claimed`` in one statement."""
    if message_id is None:
        return None, await _claimed(session, portal_id, ids)
    if not ids:
        return await _logged_copy(session, portal_id, message_id), {}
    run = await statements.of_session(session)
    copy_id, claims = None, {}
    for claimed, row_id in await run.rows(_COPY_AND_CLAIMS, portal_id=portal_id,
                                          message_id=message_id, ids=list(dict.fromkeys(ids))):
        if claimed is None:
            copy_id = row_id
        else:
            claims[claimed] = row_id
    return (None if copy_id is None else await session.get(Email, copy_id)), claims


async def _claimed(session: AsyncSession, portal_id: int, ids: list[str]) -> dict[str, int]:
    """Which of ``ids`` a thread of the portal claims: Message-ID -> thread."""
    if not ids:
        return {}
    run = await statements.of_session(session)
    rows = await run.rows(_CLAIMS, portal_id=portal_id, ids=list(dict.fromkeys(ids)))
    return {message_id: thread_id for message_id, thread_id in rows}


@dataclass(frozen=True)
class LoggedEmail:
    """What conversation merging reads of a logged email (``same_conversation``)."""

    thread_id: int
    addresses: tuple[str, ...]  # its From, To and Cc
    moved_by_hand: bool  # a user moved it to its thread (``ThreadReason.MANUAL``)


def same_conversation(nearest: int, others: list[int], emails: list[LoggedEmail],
                      users: dict[str, User] | frozenset[str], bcc_domain: str) -> list[int]:
    """The threads among ``others`` to merge with ``nearest``, as one message references
    both (JWZ: a reference chain is one conversation, whatever order its parts came in).
    Pure, over the ``emails`` of all those threads.

    Only threads that share a participant other than the portal's users are merged: a
    thread started anew because a user re-used an old email to write to new people
    (see ``admit``) stays apart when a reply references both. Nor is a thread merged
    that holds an email a user moved by hand: their correction stands.
    """
    people: dict[int, set[str]] = {t: set() for t in [nearest, *others]}
    manual: set[int] = set()
    logging_domain = bcc_domain.lower()
    for email in emails:
        if email.moved_by_hand:
            manual.add(email.thread_id)
        for address in email.addresses:
            key = (address or "").lower()
            if key and key not in users and key.rpartition("@")[2] != logging_domain:
                people.setdefault(email.thread_id, set()).add(key)
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


async def _same_conversation(
    session: AsyncSession, nearest: int, others: list[int], users: dict[str, User],
    bcc_domain: str,
) -> list[int]:
    rows = await session.execute(
        select(Email.thread_id, Email.from_email, Email.to, Email.cc, Email.thread_reason)
        .where(Email.thread_id.in_([nearest, *others])))
    emails = [
        LoggedEmail(thread_id, (sender, *(a.get("email", "") for a in [*(to or []), *(cc or [])])),
                    reason == ThreadReason.MANUAL.value)
        for thread_id, sender, to, cc, reason in rows
    ]
    return same_conversation(nearest, others, emails, users, bcc_domain)


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


async def _automatic_today(session: AsyncSession, thread_id: int,
                           parsed: ParsedMessage) -> int:
    """How many automatic emails from this message's sender the thread got in a day."""
    sender = parsed.from_.email if parsed.from_ is not None else ""
    recent = await session.scalar(select(func.count()).select_from(Email).where(
        Email.thread_id == thread_id, Email.automatic.is_not(None),
        func.lower(Email.from_email) == sender.lower(),
        Email.created_at > utcnow() - timedelta(days=1)))
    return recent or 0


def auto_reply_refusal(automatic_today: int) -> Refusal | None:
    """Automatic mail from an automatic source past the day's allowance in its thread
    (``automatic_today`` of its sender there already) is not logged (pure)."""
    if automatic_today >= AUTOMATIC_PER_THREAD_PER_DAY:
        return Refusal(NotLoggedReason.BULK, f"automatic mail: more than "
                       f"{AUTOMATIC_PER_THREAD_PER_DAY} a day in this thread")
    return None


async def _knows_any(session: AsyncSession, portal_id: int, people: dict[str, str]) -> bool:
    """Whether any of these addresses is a contact of the portal."""
    return await session.scalar(select(Contact.id).where(
        Contact.portal_id == portal_id, Contact.email.in_(people)).limit(1)) is not None


def refusal(privacy: Privacy, *, in_thread: bool, people: dict[str, str], blocked: bool,
            automatic: str | None, known_contact: bool) -> Refusal | None:
    """Why a new message must not be logged, or None (pure): the never-log list, then
    the privacy rule. ``automatic`` is given only for mail from an automatic source (what
    a user logged is never refused as bulk); ``known_contact``: one of ``people`` is a
    contact already (read only under ``Privacy.THREAD_OR_CONTACT``)."""
    if blocked and not people:
        return Refusal(NotLoggedReason.NEVER_LOG, "on the never-log list")
    if in_thread or privacy is Privacy.NONE:
        return None
    if automatic is not None:
        return Refusal(NotLoggedReason.BULK,
                       f"automatic mail ({automatic}) outside a logged thread")
    if privacy is Privacy.THREAD_OR_CONTACT and people and known_contact:
        return None
    if privacy is Privacy.THREAD_OR_CONTACT:
        return Refusal(NotLoggedReason.NOT_IN_THREAD,
                       "not part of a logged thread and no known contact")
    return Refusal(NotLoggedReason.NOT_IN_THREAD, "not part of a logged thread")
