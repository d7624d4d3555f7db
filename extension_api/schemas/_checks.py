"""Rules of request fields that types cannot say: one address per recipient entry, no
line break in what goes into a header. Each raises ValueError with a message that names
the field first (``"to[0]: ..."``): in a shape's ``__post_init__`` it becomes the 422."""

from __future__ import annotations

import re
from collections.abc import Sequence

from email_validator import EmailNotValidError, validate_email

# Characters that would end a header line or the header block of a message built from
# the field: CR, LF (and the Unicode line breaks the email package folds at), NUL.
_LINE_BREAKS = re.compile("[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def header_text(field: str, value: str) -> None:
    """``value`` goes into a header line: no line break."""
    if _LINE_BREAKS.search(value):
        raise ValueError(f"{field}: line breaks are not allowed in a header field")


def display_name(field: str, value: str) -> None:
    if _LINE_BREAKS.search(value):
        raise ValueError(f"{field}: line breaks are not allowed in a display name")


def one_address(field: str, value: str) -> None:
    """``value`` is exactly one address (syntax only, any domain: self-hosted
    deployments mail internal ones too), without line breaks."""
    if _LINE_BREAKS.search(value):
        raise ValueError(f"{field}: line breaks are not allowed in an address")
    try:
        validate_email(value.strip(), check_deliverability=False, allow_smtputf8=True,
                       allow_display_name=False, globally_deliverable=False,
                       test_environment=True)
    except EmailNotValidError:
        raise ValueError(f"{field}: give exactly one email address per entry, "
                         f"not {value[:100]!r}") from None


def entries(value: str | Sequence[object], *, split_string: bool) -> list[object]:
    """A recipients field as its entries: a string is one entry, or (``split_string``)
    a comma-separated list of them."""
    if isinstance(value, str):
        return [e for e in value.split(",") if e.strip()] if split_string else [value]
    return list(value)
