"""Bounding how deeply an email's HTML nests, before anything parses it.

The HTML parser under ``nh3`` spends time in proportion to the depth of its open
elements at every tag, so nesting costs the square of its depth: 30,000 nested
``<div>`` (340 KB) took about 3 s of a core, 200,000 (2.2 MB) over 3 minutes; and the
html-to-text pass and the forward search parse the same tags again. Real mail nests
far less (the deepest of the 79 HTML bodies under tests/emails: 8 by this count). ``flatten`` drops
the tags past ``MAX_DEPTH`` (the text between them stays), before the message is parsed
any further; what is left is sanitized as any other HTML.
"""

from __future__ import annotations

import re

MAX_DEPTH = 512

# A tag as a browser would read it, near enough: only a count, and what is kept still
# goes through the sanitizer, so a tag misread here costs display, never safety.
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/>]*)[^>]*>")
_VOID = frozenset({
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image",
    "img", "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
})  # fmt: skip


def depth(html: str) -> int:
    """The deepest nesting of ``html``'s elements: each opening tag (but a void one's)
    one level deeper, each closing tag one level back."""
    level = deepest = 0
    for match in _TAG.finditer(html):
        if match[2].lower() in _VOID:
            continue
        if match[1]:
            level = max(0, level - 1)
        else:
            level += 1
            deepest = max(deepest, level)
    return deepest


def flatten(html: str, limit: int = MAX_DEPTH) -> tuple[str, bool]:
    """``html`` without the tags nested deeper than ``limit`` (their text kept), and
    whether any was dropped. One scan of the tags (none under ``limit`` of them)."""
    if html.count("<") <= limit:
        return html, False
    pieces: list[str] = []
    level = last = 0
    for match in _TAG.finditer(html):
        closing, name = match.groups()
        if name.lower() in _VOID:
            continue
        if closing:
            dropped = level > limit
            level -= level > 0
        else:
            level += 1
            dropped = level > limit
        if dropped:
            pieces.append(html[last:match.start()])
            last = match.end()
    if not pieces:
        return html, False
    pieces.append(html[last:])
    return "".join(pieces), True
