"""Forward recovery accuracy on the real-world corpus, by client, language and kind.

Usage: .venv/bin/python scripts/forward_accuracy.py [--compare] [--markdown]
                                                     [--write-known-good]

The figure is measured on tests/emails/real_forwards/ (material nobody on this team
wrote; expectations in its manifest.json): original sender, subject and date all
right. The hand-written samples of tests/emails/forwards/ are reported apart, as
regression samples. Exits 1 below the 98% goal.

--compare also measures the maintained parsers on the same corpus, alone and
combined with ours (installed only for this: pip install -e '.[forward-compare]').
Their dates are strings: they are read with our date parser (and its offset rule),
so only what the library found is theirs.
--write-known-good records the samples right today in
tests/core/mail/real_forwards_known_good.txt (a regression list the tests enforce).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.mail import _forward_formats as formats
from core.mail.forwards import _local_offset, strip_forward_prefixes
from core.mail.parsing import html_to_text, parse_message
from tests.core.mail import test_forwards as regression
from tests.core.mail.test_real_forwards import (
    GOAL,
    KNOWN_GOOD_FILE,
    Outcome,
    Verdict,
    ours,
    run,
)

Extractor = Callable[[bytes], Outcome]


def _table(title: str, verdicts: list[Verdict], key: str, markdown: bool) -> list[str]:
    groups: dict[str, list[Verdict]] = defaultdict(list)
    for verdict in verdicts:
        groups[str(verdict.entry[key])].append(verdict)
    if markdown:
        lines = [f"| {title} | samples | sender | subject | date | all three |",
                 "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    else:
        lines = [f"{title:<16} {'n':>4} {'sender':>7} {'subject':>8} {'date':>6} {'all':>7}"]
    for name, group in sorted(groups.items()):
        n = len(group)
        cells = [sum(v.sender_ok for v in group), sum(v.subject_ok for v in group),
                 sum(v.date_ok for v in group), sum(v.ok for v in group)]  # fmt: skip
        if markdown:
            lines.append(f"| {name} | {n} | " + " | ".join(f"{c}" for c in cells[:3])
                         + f" | {cells[3]} ({cells[3] / n:.0%}) |")  # fmt: skip
        else:
            lines.append(f"{name:<16} {n:>4} {cells[0]:>7} {cells[1]:>8} {cells[2]:>6} "
                         f"{cells[3] / n:>7.1%}")  # fmt: skip
    return lines


def _summary(verdicts: list[Verdict]) -> str:
    n = len(verdicts)
    right = sum(v.ok for v in verdicts)
    return (f"{right}/{n} = {right / n:.1%} (sender {sum(v.sender_ok for v in verdicts)}, "
            f"subject {sum(v.subject_ok for v in verdicts)}, "
            f"date {sum(v.date_ok for v in verdicts)}; "
            f"{sum(v.sender_ok and v.subject_ok and v.date_exact for v in verdicts)} with the "
            f"date exact to the second)")  # fmt: skip


# The maintained parsers, each behind the same bytes -> Outcome shape.


def _context(raw: bytes) -> tuple[str, str, str, object]:
    parsed = parse_message(raw)
    text = parsed.text or (html_to_text(parsed.html) if parsed.html else "")
    return raw.decode("utf-8", "replace"), parsed.subject, text, parsed


def email_forward_parser(raw: bytes) -> Outcome:
    from emailforwardparser.client import EmailParserClient

    source, _subject, _text, parsed = _context(raw)
    metadata = EmailParserClient().get_original_metadata(source)
    original = metadata.email
    if not metadata.forwarded or not original.from_.address:
        return Outcome(None, None, None, "email-forward-parser: no original")
    date = formats.parse_loose_date(original.date, _local_offset(parsed))  # type: ignore[arg-type]
    return Outcome(original.from_.address.lower(), strip_forward_prefixes(original.subject), date)


def quotequail_unwrap(raw: bytes) -> Outcome:
    import quotequail

    _source, _subject, text, parsed = _context(raw)
    found = quotequail.unwrap(text) if text else None
    if not found and parsed.html:  # type: ignore[attr-defined]
        found = quotequail.unwrap_html(parsed.html)  # type: ignore[attr-defined]
    sender = formats.parse_one_address(found.get("from", "")) if found else None
    if not found or sender is None:
        return Outcome(None, None, None, "quotequail: no original")
    date = formats.parse_loose_date(found.get("date", ""), _local_offset(parsed))  # type: ignore[arg-type]
    return Outcome(sender.email.lower(), strip_forward_prefixes(found.get("subject", "")), date)


def mail_parser_reply(raw: bytes) -> Outcome:
    """A reply parser: it finds the quoted header block, and says nothing of its fields."""
    from mailparser_reply import EmailReplyParser

    _source, _subject, text, _parsed = _context(raw)
    languages = ["en", "de", "cs", "da", "es", "fr", "it", "ja", "ko", "nl", "pl", "sv", "zh"]
    replies = EmailReplyParser(languages=languages).read(text).replies
    headers = next((r.headers for r in replies if r.headers), "")
    sender = formats.parse_one_address(headers) if headers else None
    if sender is None:
        return Outcome(None, None, None, "mail-parser-reply: no header block")
    return Outcome(sender.email.lower(), None, None)


def first_of(*extractors: Extractor) -> Extractor:
    """The first extractor that recovers a sender wins."""

    def combined(raw: bytes) -> Outcome:
        outcome = Outcome(None, None, None)
        for extractor in extractors:
            try:
                outcome = extractor(raw)
            except Exception as exc:
                outcome = Outcome(None, None, None, f"raised {type(exc).__name__}")
            if outcome.sender is not None:
                return outcome
        return outcome

    return combined


def compare(markdown: bool) -> list[str]:
    candidates: list[tuple[str, Extractor]] = [
        ("inboxlog (core/mail/forwards.py)", ours),
        ("email-forward-parser 0.1.3", email_forward_parser),
        ("quotequail 0.5.4", quotequail_unwrap),
        ("mail-parser-reply 1.36 (sender only)", mail_parser_reply),
        ("email-forward-parser, then inboxlog", first_of(email_forward_parser, ours)),
        ("quotequail, then inboxlog", first_of(quotequail_unwrap, ours)),
        ("inboxlog, then email-forward-parser", first_of(ours, email_forward_parser)),
        ("inboxlog, then quotequail", first_of(ours, quotequail_unwrap)),
    ]
    lines = (["| extractor | sender | subject | date | all three |",
              "| --- | ---: | ---: | ---: | ---: |"] if markdown else [])  # fmt: skip
    for name, extractor in candidates:
        verdicts = run(extractor)
        n = len(verdicts)
        counts = [sum(v.sender_ok for v in verdicts), sum(v.subject_ok for v in verdicts),
                  sum(v.date_ok for v in verdicts), sum(v.ok for v in verdicts)]  # fmt: skip
        if markdown:
            lines.append(f"| {name} | " + " | ".join(f"{c}/{n}" for c in counts[:3])
                         + f" | {counts[3]}/{n} ({counts[3] / n:.1%}) |")  # fmt: skip
        else:
            lines.append(f"{name:<40} {_summary(verdicts)}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="measure the libraries too")
    parser.add_argument("--markdown", action="store_true", help="tables for docs/accuracy.md")
    parser.add_argument("--write-known-good", action="store_true")
    args = parser.parse_args()
    verdicts = run()
    if not verdicts:
        print("no real corpus in tests/emails/real_forwards/")
        return 1
    print(f"Real corpus: {_summary(verdicts)}\n")
    for title, key in (("client", "client"), ("language", "language"), ("kind", "kind")):
        print("\n".join(_table(title, verdicts, key, args.markdown)), end="\n\n")
    failures = [v for v in verdicts if not v.ok]
    print(f"Failures ({len(failures)}):")
    for verdict in failures:
        print(f"  {verdict.entry['file']} [{verdict.entry['client']}, "
              f"{verdict.entry['language']}]: {verdict.problem}")  # fmt: skip
    hits = sum(regression.matches(n, regression.extract(n)) for n in regression.EXPECTED)
    print(f"\nRegression samples (hand-written, tests/emails/forwards/, not the figure): "
          f"{hits}/{len(regression.EXPECTED)}")  # fmt: skip
    if args.compare:
        print("\nLibraries on the same corpus:")
        print("\n".join(compare(args.markdown)))
    if args.write_known_good:
        good = sorted(v.entry["file"] for v in verdicts if v.ok)
        KNOWN_GOOD_FILE.write_text("\n".join(good) + "\n")
    accuracy = sum(v.ok for v in verdicts) / len(verdicts)
    return 0 if accuracy >= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
