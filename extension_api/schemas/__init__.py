"""The API's JSON shapes (SPEC "HTTP contract"), each declared once, as a type.

A shape is a ``msgspec.Struct``: the same class validates a request body, writes a
response, and is the OpenAPI component of that name (``extension_api.openapi``
generates ``components.schemas`` from the shapes its operations name). msgspec won the
measurement of the request path (``bench/api_shapes.py``, figures in bench/NOTES.md).

How to declare an endpoint's shapes:

- **Request body**: subclass ``RequestShape`` (unknown fields are refused; a field
  with a default may be left out; ``msgspec.UNSET`` for "left out" when null means
  something). Limits go in the type, ``Annotated[str, Meta(max_length=200)]``, and show
  in the OpenAPI; a rule types cannot say goes in ``__post_init__``, raising ValueError
  with a message that names the field (``"to[0]: ..."``). Read it in the endpoint with
  ``body = await read_body(request, MyRequest)`` (``optional=True`` when an empty body
  means all defaults): 413 past the size cap, 400 when it is not a JSON object, 422
  ``invalid_input`` naming the first bad field; never a 500. Hand core a typed request
  (a core dataclass or plain arguments), not the shape's dict.
- **Response body**: subclass ``ResponseShape``; every field is always present (a type
  ``X | None`` for null). Write a ``thing_of(row) -> Thing`` builder next to it and
  answer ``respond(thing_of(row))`` (or ``respond({"items": [...]})`` for a page).
  Timestamps are ``datetime`` (RFC 3339, UTC ``Z``); closed sets are the enums of
  ``core.types``; ``Meta(description=...)`` documents a field.
- **OpenAPI**: in ``extension_api.openapi``'s ``PATHS``, name the shapes:
  ``_json(MyResponse)``, ``_body(MyRequest)``, ``_items(Thing)``. Components are
  generated from them; write none by hand.

Modules: ``mail`` (emails, threads, files, contacts), ``account`` (the caller,
settings, tokens, users, addresses, ingest log, health), ``tracking`` (tracked sends,
hits, events), ``inboxes`` (connected inboxes); ``_codec`` reads and writes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.storage.models import Email as EmailRow
from core.storage.models import Thread as ThreadRow
from core.tracking import Counts
from extension_api.schemas._codec import (
    RequestShape,
    ResponseShape,
    read_body,
    respond,
    shape_of,
    to_json,
)
from extension_api.schemas.mail import email_of, email_summary_of, thread_of, tracking_of
from extension_api.schemas.tracking import truncated_ip

__all__ = ["RequestShape", "ResponseShape", "email_json", "email_summary_json", "iso",
           "read_body", "respond", "shape_of", "thread_json", "to_json", "tracking_json",
           "truncated_ip"]


def iso(value: datetime | None) -> str | None:
    """A timestamp as the API writes it (RFC 3339, ``Z`` for UTC), for bodies that are
    not shapes yet."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def email_json(email: EmailRow, counts: Counts | None = None) -> dict[str, Any]:
    """The ``Email`` shape as plain JSON values (for a body written piece by piece)."""
    result: dict[str, Any] = to_json(email_of(email, counts))
    return result


def email_summary_json(email: EmailRow, counts: Counts | None = None) -> dict[str, Any]:
    result: dict[str, Any] = to_json(email_summary_of(email, counts))
    return result


def thread_json(thread: ThreadRow, emails: list[EmailRow],
                counts: dict[int, Counts]) -> dict[str, Any]:
    result: dict[str, Any] = to_json(thread_of(thread, emails, counts))
    return result


def tracking_json(counts: Counts | None) -> dict[str, int]:
    result: dict[str, int] = to_json(tracking_of(counts))
    return result
