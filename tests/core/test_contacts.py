"""Companies by registrable domain, from the Public Suffix List (its private section
included): unit tests of core.contacts, then BCC'd email through the SMTP port with the
companies read back through the HTTP API."""

from __future__ import annotations

import socket
from email.utils import make_msgid
from typing import Any

import httpx
import pytest

from core.contacts import (
    ContactStep,
    company_domain,
    company_name_for,
    contact_steps,
    registrable_domain,
)
from tests.support.mail import deliver, logged_id, message
from tests.support.server import PortalAccount, Server


@pytest.mark.parametrize(("domain", "registrable"), [
    # Government and other ICANN second levels: each ministry is its own organisation.
    ("finances.gouv.fr", "finances.gouv.fr"),
    ("interieur.gouv.fr", "interieur.gouv.fr"),
    ("mail.finances.gouv.fr", "finances.gouv.fr"),
    ("acme.co.uk", "acme.co.uk"),
    ("eu.mail.acme.co.uk", "acme.co.uk"),
    ("acme.com.au", "acme.com.au"),
    ("physics.ox.ac.uk", "ox.ac.uk"),
    ("acme.co.jp", "acme.co.jp"),
    ("city.kawasaki.jp", "city.kawasaki.jp"),  # an exception rule (!city.kawasaki.jp)
    ("a.b.kawasaki.jp", "a.b.kawasaki.jp"),  # a wildcard rule (*.kawasaki.jp)
    ("mail.acme.com", "acme.com"),
    ("acme.de", "acme.de"),
    # The private section: hosting platforms whose customers are separate.
    ("acme.github.io", "acme.github.io"),
    ("acme.herokuapp.com", "acme.herokuapp.com"),
    ("eu.acme.herokuapp.com", "acme.herokuapp.com"),
    ("acme.blogspot.com", "acme.blogspot.com"),
    # Unknown TLDs are one label, as the list's default rule has it (and as before).
    ("acme.example", "acme.example"),
    ("mail.acme.example", "acme.example"),
    ("acme.test", "acme.test"),
    ("lab.acme.internal", "acme.internal"),
    # Case, a final dot, non-ASCII and punycode labels.
    ("Mail.ACME.Co.UK.", "acme.co.uk"),
    ("post.münchen.de", "münchen.de"),
    ("a.xn--55qx5d.cn", "a.xn--55qx5d.cn"),  # under 公司.cn, punycoded
    # A public suffix as the whole domain is its own; nothing usable is "".
    ("localhost", "localhost"),
    ("gouv.fr", "gouv.fr"),
    ("", ""),
    ("a..b", ""),
    ("[192.0.2.1]", ""),
])
def test_registrable_domain_follows_the_public_suffix_list(domain: str,
                                                           registrable: str) -> None:
    """The registrable domain is the public suffix (ICANN or private) and one label more."""
    assert registrable_domain(domain) == registrable


def test_company_names_come_from_the_registrable_label() -> None:
    """The default name is the label before the public suffix, capitalised by part."""
    assert company_name_for("finances.gouv.fr") == "Finances"
    assert company_name_for("eu.mail.acme-corp.co.uk") == "Acme Corp"
    assert company_name_for("acme.github.io") == "Acme"
    assert company_name_for("ann.acme.example") == "Acme"


@pytest.mark.parametrize(("domain", "company"), [
    ("acme.example", "acme.example"),
    ("eu.mail.acme.co.uk", "acme.co.uk"),
    ("acme.github.io", "acme.github.io"),
    # Free mail, also under a host of a free-mail provider's domain: no company.
    ("gmail.com", None),
    ("GMail.com.", None),
    ("outlook.com", None),
    ("austin.rr.com", None),
    # Nothing usable, or longer than a domain can be.
    ("", None),
    ("a..b", None),
    ("[192.0.2.1]", None),
    ("x" * 250 + ".example", None),
])
def test_which_company_an_address_domain_joins(domain: str, company: str | None) -> None:
    """A contact joins the company of its registrable domain, except for free mail."""
    assert company_domain(domain) == company


def test_unknown_people_become_contacts_only_when_creating() -> None:
    """Known addresses always match; unknown ones are new contacts only with ``create``."""
    people = {"ann@acme.example": "Ann", "bob@beta.example": "", "cy@acme.example": "Cy"}
    known = {"bob@beta.example": "Bob"}
    assert contact_steps(people, known, create=True) == [
        ContactStep("ann@acme.example", True, "Ann"),
        ContactStep("bob@beta.example", False, None),
        ContactStep("cy@acme.example", True, "Cy"),
    ]
    assert contact_steps(people, known, create=False) == [
        ContactStep("bob@beta.example", False, None)]


def test_a_known_contact_gets_a_name_only_when_it_had_none() -> None:
    """An email's display name fills a nameless contact and never replaces a name."""
    people = {"ann@acme.example": "Ann Lee", "bob@beta.example": "Robert",
              "cy@acme.example": ""}
    known = {"ann@acme.example": "", "bob@beta.example": "Bob", "cy@acme.example": ""}
    assert contact_steps(people, known, create=False) == [
        ContactStep("ann@acme.example", False, "Ann Lee"),
        ContactStep("bob@beta.example", False, None),
        ContactStep("cy@acme.example", False, None),
    ]


def test_no_people_no_contacts() -> None:
    """An email with nobody to associate gives no step, whatever is known."""
    assert contact_steps({}, {"ann@acme.example": "Ann"}, create=True) == []


def test_the_list_is_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    """The list comes from the package: loading it opens no connection."""
    from core import contacts

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Public Suffix List must not be fetched")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    contacts._public_suffixes.cache_clear()
    try:
        assert registrable_domain("x.acme.github.io") == "acme.github.io"
    finally:
        contacts._public_suffixes.cache_clear()


# --- through the SMTP port --------------------------------------------------------------

PEOPLE = {
    "ann@finances.gouv.fr": ("finances.gouv.fr", "Finances"),
    "bob@interieur.gouv.fr": ("interieur.gouv.fr", "Interieur"),
    "cat@acme.github.io": ("acme.github.io", "Acme"),
    "dan@other.github.io": ("other.github.io", "Other"),
    "eve@eu.mail.acme.co.uk": ("acme.co.uk", "Acme"),
    "fay@acme.co.uk": ("acme.co.uk", "Acme"),
    "gus@acme.example": ("acme.example", "Acme"),
    "hal@shop.acme.example": ("acme.example", "Acme"),
    "ida@app.herokuapp.com": ("app.herokuapp.com", "App"),
}
FREE_MAIL = ["joe@gmail.com", "kim@hotmail.co.uk", "lea@yahoo.co.jp", "max@austin.rr.com"]


def _company(api: httpx.Client, address: str) -> dict[str, Any] | None:
    [contact] = api.get("/api/v1/contacts", params={"email": address}).json()["items"]
    if contact["company_id"] is None:
        return None
    company: dict[str, Any] = api.get(f"/api/v1/companies/{contact['company_id']}").json()
    return company


def test_bcc_contacts_join_companies_by_registrable_domain(
    server: Server, account: PortalAccount
) -> None:
    """A BCC'd email to people at government, hosting-platform, country and unknown-TLD
    domains: each joins the company of its registrable domain; free mail joins none."""
    msg = message(sender=account.user_email, to=list(PEOPLE)[:5], cc=list(PEOPLE)[5:] + FREE_MAIL,
                  message_id=make_msgid(), subject="Companies")
    logged_id(deliver(server, msg, account.bcc_address))
    with server.api(account.user_token) as api:
        companies = {address: _company(api, address) for address in [*PEOPLE, *FREE_MAIL]}
    for address, (domain, name) in PEOPLE.items():
        company = companies[address]
        assert company is not None, address
        assert (company["domain"], company["name"]) == (domain, name), address
    for address in FREE_MAIL:
        assert companies[address] is None, address
    ids = {address: c["id"] for address, c in companies.items() if c is not None}
    assert ids["ann@finances.gouv.fr"] != ids["bob@interieur.gouv.fr"]
    assert ids["cat@acme.github.io"] != ids["dan@other.github.io"]
    assert ids["eve@eu.mail.acme.co.uk"] == ids["fay@acme.co.uk"]
    assert ids["gus@acme.example"] == ids["hal@shop.acme.example"]
    assert len(set(ids.values())) == 7
