"""Matching and creating contacts and companies for the addresses of a logged email."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from publicsuffixlist import PublicSuffixList
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.mail.freemail import is_free_mail
from core.storage import statements
from core.storage.models import Company, Contact
from core.storage.statements import Statement


@cache
def _public_suffixes() -> PublicSuffixList:
    # The list the package ships (ICANN and private sections), read once; it is never
    # fetched at run time. Unknown TLDs (.example, .test, .internal) count as one label,
    # as the list's own default rule says.
    return PublicSuffixList()


def registrable_domain(domain: str) -> str:
    """The domain a company registers, from the Public Suffix List: the public suffix
    and one label before it. ``eu.mail.acme.co.uk`` -> ``acme.co.uk``,
    ``finances.gouv.fr`` -> itself, ``acme.github.io`` -> itself (a private-section
    suffix), ``mail.acme.example`` -> ``acme.example``. A domain that is a public suffix
    itself (``localhost``) is its own; an address literal (``[192.0.2.1]``) or a
    malformed domain (an empty label) gives ``""``: no company."""
    domain = domain.strip().lower().rstrip(".")
    if not domain or domain.startswith("[") or "" in domain.split("."):
        return ""
    return _public_suffixes().privatesuffix(domain) or domain


def company_name_for(domain: str) -> str:
    """A readable default company name: ``acme-corp.co.uk`` -> ``Acme Corp``."""
    label = registrable_domain(domain).split(".")[0]
    return " ".join(part.capitalize() for part in label.replace("_", "-").split("-") if part)


def _free_mail(domain: str, registrable: str) -> bool:
    """Free mail at ``domain`` or any parent of it down to its registrable domain (the
    free-mail list also names hosts like ``austin.rr.com``)."""
    labels = domain.strip().lower().rstrip(".").split(".")
    depth = registrable.count(".") + 1
    return any(is_free_mail(".".join(labels[i:])) for i in range(len(labels) - depth + 1))


def company_domain(domain: str) -> str | None:
    """The domain whose company a contact at ``domain`` joins: its registrable domain;
    None for free mail (at ``domain`` or a parent of it) and malformed domains."""
    registrable = registrable_domain(domain)
    if not registrable or len(registrable) > 255 or _free_mail(domain, registrable):
        return None
    return registrable


# The most contacts one email may create. Its To/Cc still lists every address; the rest
# are only not made contacts (known contacts are all linked: one read). 126 KB of To/Cc
# holds 6,000 addresses, and creating each one used to hold every tenant's mail for 2 ms.
MAX_NEW_CONTACTS = 500


@dataclass(frozen=True)
class ContactStep:
    """What becomes of one address of a logged email: a ``new`` contact, or a known one
    that gets ``name`` when it had none (``name`` None: left as it is)."""

    address: str
    new: bool
    name: str | None


def contact_steps(people: Mapping[str, str], known_names: Mapping[str, str], *,
                  create: bool, max_new: int = MAX_NEW_CONTACTS) -> list[ContactStep]:
    """The contacts for ``people`` (lower-case address -> display name), in input order,
    given ``known_names`` (address -> name of the portal's existing contacts). An unknown
    address becomes a contact only when ``create``, and only the first ``max_new`` of
    them (the sender of incoming mail comes first); a known one without a name takes
    the email's."""
    steps = []
    created = 0
    for address, name in people.items():
        if address not in known_names:
            if create and created < max_new:
                created += 1
                steps.append(ContactStep(address, True, name))
            continue
        rename = not known_names[address] and bool(name)
        steps.append(ContactStep(address, False, name if rename else None))
    return steps


# Addresses per IN list: a 12,000-address To is read in 24 statements of one compiled
# shape, not one of 16,384 placeholders compiled on the event loop (0.3 s).
_CHUNK = 512


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]


async def _companies_for(session: AsyncSession, portal_id: int,
                         domains: set[str]) -> dict[str, Company]:
    """The portal's companies for registrable ``domains``, the missing ones created: one
    read and one flush."""
    if not domains:
        return {}
    found = await session.scalars(
        select(Company).where(Company.portal_id == portal_id, Company.domain.in_(domains)))
    companies = {c.domain: c for c in found if c.domain is not None}
    missing = {domain: Company(portal_id=portal_id, domain=domain,
                               name=company_name_for(domain))
               for domain in sorted(domains - companies.keys())}
    if missing:
        session.add_all(missing.values())
        await session.flush()
    return companies | missing


async def match_contacts(
    session: AsyncSession,
    portal_id: int,
    people: dict[str, str],
    *,
    create: bool,
) -> list[Contact]:
    """The contacts for ``people`` (lower-case address -> display name), in input order.

    Missing contacts are created when ``create`` is true (at most ``MAX_NEW_CONTACTS``),
    joined to their domain's company; an existing contact gets a name when it had none
    (``contact_steps``). One read of the contacts, one of the companies, one flush each:
    nothing is flushed per contact.
    """
    if not people:
        return []
    with session.no_autoflush:
        existing = {
            c.email: c
            for chunk in _chunks(list(people))
            for c in await session.scalars(
                select(Contact).where(Contact.portal_id == portal_id, Contact.email.in_(chunk))
            )
        }
        steps = contact_steps(people, {a: c.name for a, c in existing.items()}, create=create)
        domains = {step.address: company_domain(step.address.rpartition("@")[2])
                   for step in steps if step.new}
        companies = await _companies_for(
            session, portal_id, {d for d in domains.values() if d is not None})
        result = []
        for step in steps:
            if step.new:
                company = companies.get(domains[step.address] or "")
                contact = Contact(
                    portal_id=portal_id, email=step.address, name=step.name,
                    company_id=company.id if company else None,
                )
                session.add(contact)
            else:
                contact = existing[step.address]
                if step.name is not None:
                    contact.name = step.name
            result.append(contact)
    await session.flush()
    return result


_CONTACTS = Contact.__table__.c
# Run by the database driver (core.storage.statements), for the ingest path.
_KNOWN = Statement(lambda emails: select(
    _CONTACTS.id, _CONTACTS.email, _CONTACTS.name, _CONTACTS.company_id).where(
    _CONTACTS.portal_id == bindparam("portal_id"), _CONTACTS.email.in_(emails)),
    lists=("emails",))


@dataclass(frozen=True)
class ContactLink:
    """A contact a logged email links to: its id and its company's."""

    id: int
    company_id: int | None


async def contact_links(
    session: AsyncSession, portal_id: int, people: dict[str, str], *, create: bool,
) -> list[ContactLink]:
    """``match_contacts``, for callers that need only ids. The known contacts are read
    by the driver (no ORM rows); ``match_contacts`` gets only the addresses it creates
    or renames (none for most mail)."""
    if not people:
        return []
    run = await statements.of_session(session)
    rows = {email: (contact_id, name, company_id) for chunk in _chunks(list(people))
            for contact_id, email, name, company_id
            in await run.rows(_KNOWN, portal_id=portal_id, emails=chunk)}
    steps = contact_steps(people, {a: row[1] for a, row in rows.items()}, create=create)
    changed = {s.address: people[s.address] for s in steps if s.new or s.name is not None}
    made = {c.email: ContactLink(c.id, c.company_id) for c in
            await match_contacts(session, portal_id, changed, create=create)}
    return [made.get(s.address) or ContactLink(rows[s.address][0], rows[s.address][2])
            for s in steps]
