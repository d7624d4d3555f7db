"""Bind processors for the types most of a new email's values have, cheaper than
SQLAlchemy's own and giving the same value (tests/core/storage/test_binds.py compares
them on many values, on SQLite and PostgreSQL).

SQLAlchemy's processor of a ``UTCDateTime`` is the TypeDecorator's call of
``process_bind_param`` wrapped around SQLite's DATETIME formatting through a dict and
``%``; of a ``JSON`` a check for its NULL markers around ``json.dumps``; of a
``Boolean`` a set lookup and a coercion. Per new email that was about a third of the
time spent turning values into parameters (bench/NOTES.md, "The new email's
statements"). Here the common value (an aware ``datetime``, a dict or a list, ``True``
or ``False``) takes a short path; anything else (``None`` never reaches a processor,
``core.storage.statements``) goes to SQLAlchemy's processor, errors included.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.sqlite.base import DATETIME as SQLITE_DATETIME
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import sqltypes
from sqlalchemy.types import TypeEngine

from core.storage.models.base import UTCDateTime

Processor = Callable[[Any], Any] | None

# SQLite's DATETIME text as SQLAlchemy stores it by default: isoformat's, microseconds
# always (year zero-padded to 4 digits both ways), without the offset.
_SQLITE_FORMAT = ("%(year)04d-%(month)02d-%(day)02d "
                  "%(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d")
_SQLITE_TEXT = len("2026-12-02 00:00:00.000000")


def bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    """``type_``'s bind processor on ``dialect``: a cheaper one of the same values for
    the types above, else SQLAlchemy's."""
    impl = type_.dialect_impl(dialect)
    slow = impl.bind_processor(dialect)
    if slow is None:
        return None
    if type(impl) is UTCDateTime:
        return _utc_datetime(impl, dialect, slow)
    if (isinstance(impl, sqltypes.JSON)
            and type(impl).bind_processor is sqltypes.JSON.bind_processor
            and type(impl)._make_bind_processor is sqltypes.JSON._make_bind_processor
            and impl._str_impl.bind_processor(dialect) is None):
        return _json(dialect._json_serializer or json.dumps, slow)
    if (isinstance(impl, sqltypes.Boolean)
            and type(impl).bind_processor is sqltypes.Boolean.bind_processor
            and type(impl)._strict_as_bool is sqltypes.Boolean._strict_as_bool):
        native = dialect.supports_native_boolean
        return _boolean(True if native else 1, False if native else 0, slow)
    return slow


def _utc_datetime(impl: UTCDateTime, dialect: Dialect, slow: Callable[[Any], Any]
                  ) -> Processor:
    inner = impl.impl_instance
    inner_processor = inner.bind_processor(dialect)
    if dialect.name == "sqlite":
        if (type(inner) is not SQLITE_DATETIME or inner._storage_format != _SQLITE_FORMAT
                or inner_processor is None):
            return slow

        # The last datetime formatted, and its text: a new email's times are mostly
        # one ``now`` (the email's, its raw copy's and events' created_at), and
        # formatting is most of this processor's work.
        kept: list[tuple[Any, str]] = [(_NOTHING, "")]

        def as_text(value: Any) -> Any:
            seen, text = kept[0]
            if value is seen:
                return text
            if type(value) is datetime and value.tzinfo is not None:
                text = value.astimezone(UTC).isoformat(" ", "microseconds")[:_SQLITE_TEXT]
                kept[0] = (value, text)  # one assignment: a reader sees a matching pair
                return text
            return slow(value)

        return as_text
    if inner_processor is not None:  # a driver that wants more than the datetime
        return slow

    def in_utc(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is not None:
            return value.astimezone(UTC)
        return slow(value)

    return in_utc


def _json(serializer: Callable[[Any], str], slow: Callable[[Any], Any]) -> Processor:
    if serializer is json.dumps and _ENCODE is not None:
        encode = _ENCODE

        def as_json(value: Any) -> Any:
            if type(value) is dict or type(value) is list:
                try:
                    return "".join(encode(value, 0))
                except Exception:  # a value json.dumps refuses: its own error
                    return slow(value)
            return slow(value)

        return as_json

    def as_serialized(value: Any) -> Any:
        if type(value) is dict or type(value) is list:
            return serializer(value)
        return slow(value)

    return as_serialized


def _c_encoder() -> Callable[[Any, int], Any] | None:
    """``json.dumps``'s C encoder with its default settings, made once: ``dumps``
    makes one per call (about half its time on a small list). Without the check for
    circular values, which then recurse until a RecursionError and go to ``dumps``."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    defaults = json.JSONEncoder()
    encode: Callable[[Any, int], Any] = make(
        None, defaults.default, json.encoder.encode_basestring_ascii, defaults.indent,
        defaults.key_separator, defaults.item_separator, defaults.sort_keys,
        defaults.skipkeys, defaults.allow_nan)
    return encode


_ENCODE = _c_encoder()
_NOTHING = object()


def _boolean(true: Any, false: Any, slow: Callable[[Any], Any]) -> Processor:
    def as_boolean(value: Any) -> Any:
        if value is True:
            return true
        if value is False:
            return false
        return slow(value)

    return as_boolean
