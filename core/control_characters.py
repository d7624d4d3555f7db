"""The one rule for control characters in what people type (PostgreSQL's text columns
refuse NUL, so a NUL reaching one is a 500): a short label-like field (a name, a
pipeline, a tag) takes no C0 control other than tab, CR and LF; free text (a note, a
reply) takes anything but NUL. Nothing is removed: the caller refuses the request,
naming the field (422 on the API, 400 on the pages)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

NUL = "\x00"
# C0 controls other than tab (09), LF (0a) and CR (0d); NUL among them.
LABEL_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f"
LABEL_PATTERN = f"^[^{LABEL_CONTROLS}]*$"
"""A regular expression (for a msgspec ``Meta(pattern=...)``) a label matches."""
_LABEL_CONTROL = re.compile(f"[{LABEL_CONTROLS}]")

NUL_MESSAGE = "the NUL character (U+0000) is not allowed"
CONTROL_MESSAGE = "control characters (other than tab and line breaks) are not allowed"


def label_problem(field: str, value: str) -> str | None:
    """``"field: ..."`` when ``value`` has a C0 control a label may not hold, else None."""
    return f"{field}: {CONTROL_MESSAGE}" if _LABEL_CONTROL.search(value) else None


def nul_field(value: object, path: str = "") -> str | None:
    """The path (``"tags[2]"``, ``"to[0].name"``) of the first string holding a NUL in
    decoded JSON (or a form's fields), a key included; None when there is none."""
    if isinstance(value, str):
        return path or "body" if NUL in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and NUL in key:
                return here.replace(NUL, "\\u0000")
            if (found := nul_field(item, here)) is not None:
                return found
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for index, item in enumerate(value):
            if (found := nul_field(item, f"{path}[{index}]")) is not None:
                return found
    return None
