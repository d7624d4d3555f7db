"""MAIL FROM and RCPT TO paths: InboxlogSMTP's shortcut for a plain ``<local@domain>``
reads every path exactly as aiosmtpd's own parser does (address and parameters, or
``None`` for a path it refuses). Pure parsing: compared in-process, path by path."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiosmtpd import smtp as aiosmtpd_smtp
from aiosmtpd.smtp import SMTP

from smtp_ingest.server import InboxlogSMTP

PATHS = [
    "<rep@ourco.example>", "<buyer1@acme1.example> SIZE=4096", "<a@b>", "<A.B+c@Ex-1.COM>",
    "<a@b>  SIZE=1 BODY=8BITMIME", "<a@b>\tSIZE=1", "<a@b>\x0bSIZE=1", "<a@b>SIZE=1",
    "<a@b> (comment) SIZE=1", "<a@b>(c)", "<a..b@c>", "<.a@c>", "<a.@c>", "<a@b.>",
    "<a@.b>", "<a@b..c>", "<a@[127.0.0.1]>", "<\"a b\"@c>", "<a@b_c>", "<é@b>", "<a@é>",
    "<>", "<@relay:a@b>", " <a@b>", "a@b", "a@b SIZE=1", "<a@b", "<a@b>>", "<a b@c>",
    "<a@b c>", "<a@b> ", "<a@b>\u00a0SIZE=1", "<a@b>\u2003", "<" + "x" * 65 + "@b>",
    "<" + "x" * 64 + "@b>", "<a@" + "b" * 300 + ">", "",
]
ALPHABET = "ab.@<> \t()\"[]_-+=é\x0b:,;\\"


def _fuzzed(count: int) -> list[str]:
    pick = random.Random(17)  # fixed: the same paths every run
    paths = []
    for _ in range(count):
        middle = "".join(pick.choice(ALPHABET) for _ in range(pick.randrange(1, 12)))
        paths.append(pick.choice(["<", "<a", "<a@b", ""]) + middle
                     + pick.choice([">", "> SIZE=1", "", "@b>"]))
    return paths


def _read(server: SMTP, path: str) -> object:
    try:
        return server._getaddr(path)
    except Exception as exc:  # the stdlib's parser trips on some junk: the same junk
        return type(exc)


async def test_a_path_reads_as_aiosmtpd_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    paths = [*PATHS, *_fuzzed(2000)]
    for limit in (0, 64):  # aiosmtpd's default (none), and RFC 5321's local-part limit
        ours = InboxlogSMTP(object(), loop=loop)  # type: ignore[arg-type]
        theirs = SMTP(object(), loop=loop)
        ours.local_part_limit = theirs.local_part_limit = limit
        read = [(path, _read(ours, path), _read(theirs, path)) for path in paths]
        assert not [r for r in read if r[1] != r[2]], [r for r in read if r[1] != r[2]][:5]
    assert ours._getaddr("<" + "x" * 65 + "@b>") == (None, None)
    # The common shapes never reach the stdlib's parser.
    monkeypatch.setattr(aiosmtpd_smtp, "get_angle_addr", None)
    assert ours._getaddr("<buyer1@acme1.example> SIZE=4096") == ("buyer1@acme1.example",
                                                                 "SIZE=4096")
    assert ours._getaddr("<A.B+c@Ex-1.COM>") == ("A.B+c@Ex-1.COM", "")
