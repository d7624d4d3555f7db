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
  Timestamps are ``_codec.Timestamp`` (an aware datetime, written RFC 3339 with ``Z``
  for UTC); closed sets are the enums of ``core.types``; ``Meta(description=...)``
  documents a field, the class docstring the component. A shape that adds fields to
  another subclasses it (``NewToken(Token)``); builders share a ``_fields`` dict.
- **OpenAPI**: in ``extension_api.openapi``'s ``PATHS``, name the shapes:
  ``_json(MyResponse)``, ``_body(MyRequest)`` (``required=False`` for an optional
  body), ``_items(Thing, cursor=...)`` for a page. Components are generated from them
  (class names must be unique); write none by hand. tests/extension_api/test_schemas.py
  shows how a shape is tested.

Modules: ``mail`` (emails, threads, files, contacts), ``account`` (the caller,
settings, tokens, users, addresses, ingest log, health), ``tracking`` (tracked sends,
hits, events), ``inboxes`` (connected inboxes), ``search`` (search results);
``_checks`` holds the field rules types cannot say, ``_codec`` reads and writes shapes.
"""

from __future__ import annotations

from typing import Any

from core.storage.models import Email as EmailRow
from core.tracking import Counts
from extension_api.schemas._codec import (
    RequestShape,
    ResponseShape,
    read_body,
    respond,
    shape_of,
    to_json,
)
from extension_api.schemas.mail import email_of
from extension_api.schemas.tracking import truncated_ip

__all__ = ["RequestShape", "ResponseShape", "email_json", "read_body", "respond", "shape_of",
           "to_json", "truncated_ip"]


def email_json(email: EmailRow, counts: Counts | None = None) -> dict[str, Any]:
    """The ``Email`` shape as plain JSON values (for a body written piece by piece)."""
    result: dict[str, Any] = to_json(email_of(email, counts))
    return result
