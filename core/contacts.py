"""Matching and creating contacts and companies for the addresses of a logged email."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.freemail import is_free_mail
from core.models import Company, Contact

# Second-level labels under which country domains register names (acme.co.uk, acme.com.au).
_COUNTRY_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "gov", "edu", "ac", "ne", "or", "go"})


def registrable_domain(domain: str) -> str:
    """The domain a company registers: ``eu.mail.acme.co.uk`` -> ``acme.co.uk``."""
    labels = domain.lower().rstrip(".").split(".")
    keep = 3 if (len(labels) >= 3 and len(labels[-1]) == 2
                 and labels[-2] in _COUNTRY_SECOND_LEVEL) else 2
    return ".".join(labels[-keep:])


def company_name_for(domain: str) -> str:
    """A readable default company name: ``acme-corp.co.uk`` -> ``Acme Corp``."""
    label = registrable_domain(domain).split(".")[0]
    return " ".join(part.capitalize() for part in label.replace("_", "-").split("-") if part)


async def company_for_domain(session: AsyncSession, portal_id: int, domain: str) -> Company | None:
    """The portal's company for an email domain, created when missing; None for free mail."""
    domain = registrable_domain(domain)
    if not domain or len(domain) > 255 or is_free_mail(domain):
        return None
    company = await session.scalar(
        select(Company).where(Company.portal_id == portal_id, Company.domain == domain)
    )
    if company is None:
        company = Company(portal_id=portal_id, domain=domain, name=company_name_for(domain))
        session.add(company)
        await session.flush()
    return company


async def match_contacts(
    session: AsyncSession,
    portal_id: int,
    people: dict[str, str],
    *,
    create: bool,
) -> list[Contact]:
    """The contacts for ``people`` (lower-case address -> display name), in input order.

    Missing contacts are created when ``create`` is true, joined to their domain's
    company; an existing contact gets a name when it had none.
    """
    if not people:
        return []
    existing = {
        c.email: c
        for c in await session.scalars(
            select(Contact).where(Contact.portal_id == portal_id, Contact.email.in_(people))
        )
    }
    result = []
    for address, name in people.items():
        contact = existing.get(address)
        if contact is None and create:
            company = await company_for_domain(session, portal_id, address.rpartition("@")[2])
            contact = Contact(
                portal_id=portal_id, email=address, name=name,
                company_id=company.id if company else None,
            )
            session.add(contact)
        elif contact is not None and not contact.name and name:
            contact.name = name
        if contact is not None:
            result.append(contact)
    await session.flush()
    return result
