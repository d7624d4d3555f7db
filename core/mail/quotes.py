"""The new text of a reply, without quoted history or signature; pure, never raises."""

from __future__ import annotations

import re

from core.mail import _forward_formats as formats
from core.mail._mime import lf_line_ends

# Attribution lines ("On <date>, <name> wrote:") end with one of these verbs, or
# carry one before the sender's address ("Am <date> schrieb Name <addr>:").
_VERBS = (
    r"(?:wrote|a écrit|schrieb|escribió|escreveu|ha scritto|scrive|schreef|skrev|skriver"
    r"|pisze|napisał\(a\)|napisała|napisał|napsal\(a\)|napsala|napsal|írta|kirjoitti"
    r"|написал\(а\)|написала|написал|пишет|yazdı)"
)
_WROTE = re.compile(_VERBS + r"\s*(?:\([^)]*\))?\s*[:：]\s*$", re.IGNORECASE)
_VERB_BEFORE_ADDRESS = re.compile(
    r"(?<!\w)" + _VERBS + r"(?!\w).*@[^<>\s]+>?\s*[:：]\s*$", re.IGNORECASE
)
# Russian Gmail writes no verb: "пн, 16 нояб. 2026 г. в 09:30, Имя <addr>:".
_ADDRESS_COLON = re.compile(r"\d.*<[^<>\s]+@[^<>\s]+>\s*[:：]\s*$")
_ATTRIBUTION_MAX = 300
_SIGNATURE_DELIMITER = re.compile(r"^--\s?$")
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(?:sent from my \w+|sent from (?:mail|outlook) for \w+|sent from outlook"
    r"|sent from yahoo mail|sent from samsung|get outlook for \w+|envoyé de mon \w+"
    r"|envoyé depuis mon \w+|obtenir outlook pour \w+|von meinem \w+ gesendet"
    r"|gesendet von meinem \w+|outlook für \w+ beziehen|enviado desde mi \w+"
    r"|enviado do meu \w+|inviato da \w+|inviato dal mio \w+|verzonden vanaf mijn \w+"
    r"|verstuurd vanaf mijn \w+|skickat från min \w+|sendt fra min \w+|lähetetty \w+"
    r"|wysłane z mojego \w+|wysłano z \w+|odesláno z \w+|elküldve az \w+|küldve az \w+"
    r"|отправлено с \w+|iphone'umdan gönderildi)\b.*$",
    re.IGNORECASE,
)
# The first letters of _MOBILE_SIGNATURE's phrases ("о": Cyrillic), folded as it folds
# them: a line starting otherwise is no mobile signature.
_MOBILE_START = re.compile("[egiklosvwо]", re.IGNORECASE)


def reply_text(text: str) -> str:
    """The new part of a reply, for timeline display.

    Cuts at the first attribution line ("On ... wrote:" in many languages, also
    wrapped over two lines), Outlook's "-----Original Message-----" line or
    "From:/Sent:" header block (localized labels, optionally after an underscore
    line), a signature delimiter ("-- ") or a mobile signature ("Sent from my
    iPhone"...). Lines starting with ">" are dropped, so interleaved answers are
    kept. Returns ``text`` unchanged when nothing is quoted, and ``text.strip()``
    when everything is. Never raises.
    """
    try:
        return _reply_text(text)
    except Exception:  # pure display helper: the full text is a safe answer
        return text


def _reply_text(text: str) -> str:
    joined = lf_line_ends(text)
    # A short text is cheaper to look at line by line than to search for candidates.
    candidates = _candidate_lines(joined) if len(joined) >= _SHORT_TEXT else None
    if candidates == []:
        return text  # no line can cut, none is quoted: the split below would keep all
    lines = joined.split("\n")
    cut = _cut_index(lines, candidates)
    kept = [line for line in lines[:cut] if not line.lstrip().startswith(">")]
    if cut == len(lines) and len(kept) == len(lines):
        return text
    result = "\n".join(kept).strip()
    return result or text.strip()


_SHORT_TEXT = 1024  # characters
# What a cut line starts with when it has no colon: a separator rule, or "-- ".
_RULE_STARTS = ("-", "—", "–", "━", "_")


def may_cut_at(stripped: str, following: str) -> bool:
    """A cheap test before ``_cut_index``'s regexes but the mobile signature's, false
    only where none of them can match: an attribution, alone or wrapped onto the
    ``following`` line, and a header label have a colon; a separator line and a
    signature delimiter start with dashes or underscores."""
    return (formats.may_hold_label(stripped) or following.endswith((":", "："))
            or stripped.startswith(_RULE_STARTS))


def may_be_mobile(stripped: str) -> bool:
    """A cheap test before ``_MOBILE_SIGNATURE``, false only where it cannot match."""
    return _MOBILE_START.match(stripped) is not None


# A line opening with what a cut line, a mobile signature or a quoted line opens with
# (``may_cut_at``'s rules, ``_MOBILE_START``'s letters folded as it folds them, ">").
_LINE_OPENING = re.compile("\n[^\\S\n]*(?:[-—–━_>]|[egiklosvwо])", re.IGNORECASE)
_COLONS = (":", "：", "៖")


def _candidate_lines(text: str) -> list[int]:
    """The indices (sorted) of the lines of ``text`` (split at "\\n") that ``_cut_index``
    must look at, and of every quoted line; the rest would be passed over, one by one.

    A superset of the lines ``may_cut_at`` or ``may_be_mobile`` lets through: a line
    holding one of ``may_hold_label``'s colons and the line above it (whose
    ``following`` line may end with it), and a line that starts, past its leading
    whitespace, with a rule, ">" or a mobile signature's first letter. Found by
    searches over the whole text instead of a Python test per line.
    """
    marked = "\n" + text  # offset p in ``marked`` is offset p - 1 in ``text``
    # (offset, whether the line above counts too), for a line starting at ``offset``
    # or holding it; the leading "\n" of a match is the end of the line above.
    found = [(match.start(), False) for match in _LINE_OPENING.finditer(marked)]
    for colon in _COLONS:
        position = marked.find(colon)
        while position >= 0:
            found.append((position, True))
            line_end = marked.find("\n", position)
            position = marked.find(colon, line_end) if line_end >= 0 else -1
    found.sort()
    indices: set[int] = set()
    line, counted = 0, 0
    for position, above in found:
        line += marked.count("\n", counted, position)  # newlines before: its index
        counted = position
        if above:  # a colon: ``line`` counts the one at 0, this line is one less
            indices.update((line - 1, line - 2) if line > 1 else (line - 1,))
        else:
            indices.add(line)
    return sorted(indices)


def _cut_index(lines: list[str], candidates: list[int] | None = None) -> int:
    """The first line to cut at (``len(lines)``: none); ``candidates``, from
    ``_candidate_lines``, are the only lines that need a look (default: all)."""
    for index in range(len(lines)) if candidates is None else candidates:
        line = lines[index]
        stripped = line.strip()
        if not stripped or stripped.startswith(">"):
            continue
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if not may_cut_at(stripped, following):
            if may_be_mobile(stripped) and _MOBILE_SIGNATURE.match(stripped):
                return index
            continue
        if _is_attribution(stripped):
            return index
        if following and _is_attribution(f"{stripped} {following}") and _starts_like(stripped):
            return index  # Gmail wrapped the attribution over two lines
        dash = formats.DASH_LINE.match(stripped)
        if dash is not None and (
            formats.ORIGINAL_WORDS.search(dash.group(2))
            or formats.FORWARD_WORDS.search(dash.group(2))
        ):
            return index
        if formats.UNDERSCORE_LINE.match(stripped) and _from_follows(lines, index + 1):
            return index
        if formats.is_header_block_start(lines, index):
            return index
        if _SIGNATURE_DELIMITER.match(line.rstrip("\n")) or _MOBILE_SIGNATURE.match(stripped):
            return index
    return len(lines)


def _is_attribution(line: str) -> bool:
    # Every attribution pattern ends with a colon: a cheap test spares the regexes
    # on almost every line of a message.
    if len(line) > _ATTRIBUTION_MAX or not line.rstrip().endswith((":", "：")):
        return False
    if _WROTE.search(line) and (any(c.isdigit() for c in line) or "@" in line):
        return True
    return bool(_VERB_BEFORE_ADDRESS.search(line) or _ADDRESS_COLON.search(line))


def _starts_like(line: str) -> bool:
    """Whether a line can open an attribution wrapped onto the next line."""
    return bool(
        re.match(
            r"^(?:on|le|am|el|il|op|em|den|på|w dniu|dne|в|v|\d|\w{2,4}[.,]?\s+\d)",
            line,
            re.IGNORECASE,
        )
    )


def _from_follows(lines: list[str], start: int) -> bool:
    for line in lines[start : start + 3]:
        if line.strip():
            label = formats.header_label(line)
            return label is not None and label[0] == "from"
    return False
