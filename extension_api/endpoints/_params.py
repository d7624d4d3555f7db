"""Reading path, query and body parameters with a clear 4xx when they are wrong."""

from __future__ import annotations

import json
import re
from typing import Any

from email_validator import EmailNotValidError, validate_email
from starlette.requests import Request

from core.errors import NotFound
from extension_api.errors import ApiError

_MAX_ID = 2**63 - 1
MAX_JSON_BODY = 1024 * 1024
MAX_JSON_DEPTH = 32


def path_id(request: Request, name: str = "id") -> int:
    value = int(request.path_params[name])
    if value > _MAX_ID:
        raise NotFound(f"no object {value}")
    return value


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"{name} must be between {low} and {high}")
    return value


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object: 413 over MAX_JSON_BODY bytes (``BodyLimit`` stops
    reading there), 400 when it is not JSON, not an object, or nested deeper than
    MAX_JSON_DEPTH."""
    body = await request.body()
    if len(body) > MAX_JSON_BODY:
        raise ApiError(413, "too_large", "request body too large")
    try:
        value = json.loads(body or b"null")
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_request", "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "bad_request", "body must be a JSON object")
    if _depth(value) > MAX_JSON_DEPTH:
        raise _too_deep()
    return value


def _too_deep() -> ApiError:
    return ApiError(400, "bad_request", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def _depth(value: Any) -> int:
    """How deep arrays and objects nest in ``value``, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (item.values() if isinstance(item, dict)
                    else item if isinstance(item, list) else None)
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


# Characters that would end a header line or the header block of a message built from
# the field: CR, LF (and the Unicode line breaks the email package folds at), NUL.
_LINE_BREAKS = re.compile("[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def header_text(body: dict[str, Any], field: str) -> None:
    """422 naming ``field`` when it holds a line break (it goes into a header line)."""
    value = body.get(field)
    if isinstance(value, str) and _LINE_BREAKS.search(value):
        raise ApiError(422, "invalid_input",
                       f"{field}: line breaks are not allowed in a header field")


def recipients(body: dict[str, Any], field: str, *, split_string: bool) -> None:
    """422 naming ``field[i]`` unless every entry of ``body[field]`` is exactly one
    address (a string, or ``{"email", "name"}``), without line breaks.

    A string ``body[field]`` is one entry, or (``split_string``) a comma-separated list.
    Only checks: the endpoint goes on to read the field as it did.
    """
    value = body.get(field)
    if isinstance(value, str):
        entries: list[Any] = value.split(",") if split_string else [value]
        entries = [e for e in entries if e.strip()] if split_string else entries
    elif isinstance(value, list):
        entries = value
    else:
        return  # absent, or of a wrong type that the endpoint refuses with its own words
    for index, entry in enumerate(entries):
        name = f"{field}[{index}]"
        if isinstance(entry, dict):
            display = entry.get("name")
            if isinstance(display, str) and _LINE_BREAKS.search(display):
                raise ApiError(422, "invalid_input",
                               f"{name}.name: line breaks are not allowed in a display name")
            entry, name = entry.get("email"), f"{name}.email"
        if not isinstance(entry, str):
            continue
        if _LINE_BREAKS.search(entry):
            raise ApiError(422, "invalid_input",
                           f"{name}: line breaks are not allowed in an address")
        try:
            # Syntax only, any domain (self-hosted deployments mail internal ones too).
            validate_email(entry.strip(), check_deliverability=False, allow_smtputf8=True,
                           allow_display_name=False, globally_deliverable=False,
                           test_environment=True)
        except EmailNotValidError:
            raise ApiError(422, "invalid_input",
                           f"{name}: give exactly one email address per entry, "
                           f"not {entry[:100]!r}") from None


def mail_fields(body: dict[str, Any], *, addresses: tuple[str, ...],
                headers: tuple[str, ...], split_string: bool = False) -> None:
    """Check the recipients and header texts of a message about to be built (send, tracked
    send): 422 naming the first bad field."""
    for field in addresses:
        recipients(body, field, split_string=split_string)
    for field in headers:
        header_text(body, field)
