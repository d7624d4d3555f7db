"""How shapes become bodies and bodies shapes: reading a request body into a request
shape (a precise 400/413/422, never a 500), writing a response shape, and the OpenAPI
components of every shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from core.control_characters import CONTROL_MESSAGE, LABEL_PATTERN, NUL_MESSAGE, nul_field
from extension_api.endpoints._params import json_object
from extension_api.errors import ApiError, ApiErrorCode

Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
"""A point in time: RFC 3339 with its offset (``Z`` for UTC)."""


class RequestShape(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A request body: unknown fields are refused; a field with a default may be left
    out. ``__post_init__`` may raise ValueError for a rule types cannot say: the
    message, which names the field (``"to[0]: ..."``), becomes the 422."""


class ResponseShape(msgspec.Struct, kw_only=True):
    """A response body: every field is always present (``null`` when it has no value)."""


R = TypeVar("R", bound=RequestShape)

_AT = re.compile(r"^(?P<text>.*) - at `\$\.?(?P<path>[^`]*)`$", re.DOTALL)


def _invalid(exc: msgspec.ValidationError) -> ApiError:
    """A validation error as 422 invalid_input whose message names the field first."""
    message = str(exc)
    if (at := _AT.match(message)) is not None and at["path"]:
        text = at["text"]
        if repr(LABEL_PATTERN) in text:  # the rule, not its regular expression
            text = CONTROL_MESSAGE
        message = f"{at['path']}: {text[:1].lower()}{text[1:]}"
    return ApiError(422, ApiErrorCode.INVALID_INPUT, message)


def shape_of(value: Mapping[str, Any], shape: type[R]) -> R:
    """``value`` (decoded JSON) as ``shape``; 422 naming the first bad field. No string
    of any shape holds a NUL (PostgreSQL's text columns refuse it): 422 naming it."""
    if (field := nul_field(value)) is not None:
        raise ApiError(422, ApiErrorCode.INVALID_INPUT, f"{field}: {NUL_MESSAGE}")
    try:
        return msgspec.convert(value, shape)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None


async def read_body(request: Request, shape: type[R], *, optional: bool = False) -> R:
    """The request's JSON body as ``shape``: 413 past the size cap, 400 when it is not a
    JSON object or nests too deep (``_params.json_object``), 422 naming the first field
    that does not fit. ``optional``: an empty body is ``shape()`` (all its defaults)."""
    if optional and not await request.body():
        return shape_of({}, shape)
    return shape_of(await json_object(request), shape)


_ENCODER = msgspec.json.Encoder()


class ShapeResponse(Response):
    """A response shape (or a list/dict of them) encoded as JSON."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content)


def respond(content: Any, status_code: int = 200,
            headers: Mapping[str, str] | None = None) -> Response:
    """``content`` (shapes, and lists and dicts of them) as a JSON response."""
    return ShapeResponse(content, status_code, headers=headers)


def to_json(content: Any) -> Any:
    """``content`` as plain JSON values (dicts, lists, strings, numbers)."""
    return msgspec.to_builtins(content)


def components(shapes: list[type[Any]]) -> dict[str, Any]:
    """The OpenAPI ``components.schemas`` of ``shapes`` and of every shape they use,
    each under its class name."""
    _, found = msgspec.json.schema_components(
        shapes, ref_template="#/components/schemas/{name}")
    return found
