"""Hostile MIME through the real SMTP port: always a defined reply, never a crash or leak."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import test as cpython_tests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.robustness._raw import RawSMTP, rss_bytes, transparent
from tests.support.server import PortalAccount, Server

USER = "rep@ourco.example"
# 250 logged / not logged; 550 5.7.1 sender not a user; 552 too large or header block too
# big; 500 line too long. 451 would mean a crash inside the pipeline.
DEFINED = {250, 500, 550, 552}
RSS_LIMIT = 1 << 30
CORPUS = Path(cpython_tests.__file__).parent / "test_email" / "data"
FALLBACK_CORPUS = Path(__file__).parents[1] / "emails"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server,
                                                                           PortalAccount]]:
    server = Server(tmp_path_factory.mktemp("fuzz")).start()
    try:
        yield server, server.new_portal(USER)
    finally:
        server.stop()


def _emails_logged(server: Server, portal_id: int) -> int:
    with sqlite3.connect(f"file:{server.data_dir / 'inboxlog.db'}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM emails WHERE portal_id = ?",
                                (portal_id,)).fetchone()[0])


def _check_alive(server: Server) -> None:
    assert server.alive(), server.log()[-3000:]
    assert server.process is not None
    assert rss_bytes(server.process.pid) < RSS_LIMIT


# --- generated MIME -------------------------------------------------------------------

EOL = st.sampled_from([b"\r\n", b"\n", b"\r"])
CHARSETS = st.sampled_from([b"utf-8", b"us-ascii", b"iso-8859-1", b"windows-1252", b"koi8-r",
                            b"gb2312", b"utf-7", b"x-unknown", b"", b"utf-16", b'"utf-8'])
ODD_BYTES = st.binary(max_size=200).map(lambda b: b.replace(b"\r\n.\r\n", b"\r\n..\r\n"))
TEXT = st.one_of(
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    ODD_BYTES,
    st.sampled_from([b"\x00\x00", b".\r\n", b"..", b"\n.\n", b"\r.\r", b"\r\n.\r",
                     b"=?utf-8?b?w6k=?=", b"=?x?q?broken", b"\xff\xfe", b"a" * 5000]),
)


@st.composite
def header(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from([b"Subject", b"To", b"Cc", b"References", b"In-Reply-To",
                                 b"Message-ID", b"Date", b"X-Fuzz", b"Reply-To",
                                 b"Content-Type", b"Thread-Index"]))
    parts = draw(st.lists(TEXT, min_size=1, max_size=4))
    folded = draw(EOL).join(b" " + p.replace(b"\n", b" ") for p in parts)
    if draw(st.booleans()) and draw(st.integers(0, 20)) == 0:
        folded += b" " + b"x" * draw(st.integers(1000, 300_000))  # huge header
    return name + b":" + folded


@st.composite
def body(draw: st.DrawFn, depth: int = 0) -> bytes:
    eol = draw(EOL)
    if depth < 12 and draw(st.integers(0, 3)) == 0:
        boundary = draw(st.sampled_from([b"", b"a", b"b" * 70, b"=_x", b'"q"', None]))
        children = draw(st.lists(body(depth + 1), max_size=3))
        ctype = b"Content-Type: multipart/" + draw(st.sampled_from(
            [b"mixed", b"alternative", b"related", b"digest", b"report"]))
        if boundary is not None:
            ctype += b"; boundary=" + boundary
        parts = b"".join(b"--" + (boundary or b"") + eol + child + eol for child in children)
        closing = b"--" + (boundary or b"") + b"--" + eol if draw(st.booleans()) else b""
        return ctype + eol + eol + parts + closing
    ctype = draw(st.sampled_from([b"text/plain", b"text/html", b"message/rfc822",
                                  b"application/octet-stream", b"image/png", b"text/calendar"]))
    cte = draw(st.sampled_from([b"", b"base64", b"quoted-printable", b"8bit", b"x-uue",
                                b"binary"]))
    head = b"Content-Type: " + ctype + b"; charset=" + draw(CHARSETS) + eol
    if cte:
        head += b"Content-Transfer-Encoding: " + cte + eol
    if draw(st.booleans()):
        head += b'Content-Disposition: attachment; filename="' + draw(TEXT)[:80] + b'"' + eol
    return head + eol + eol.join(draw(st.lists(TEXT, max_size=6)))


@st.composite
def mime_message(draw: st.DrawFn) -> bytes:
    eol = draw(EOL)
    sender = draw(st.sampled_from([USER.encode(), b"Stranger <x@elsewhere.example>", b"",
                                   b"=?utf-8?q?Rita?= <" + USER.encode() + b">"]))
    headers = [b"From: " + sender, b"MIME-Version: 1.0",
               b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@fuzz.example>"]
    headers += draw(st.lists(header(), max_size=6))
    return eol.join(headers) + eol + draw(body())


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw=mime_message())
def test_generated_mime_gets_a_defined_reply(fuzz_server: tuple[Server, PortalAccount],
                                             raw: bytes) -> None:
    """Any generated MIME (nesting, odd boundaries, charsets, NULs, bare LF/CR) gets a
    defined reply and leaves the server alive with bounded memory."""
    server, account = fuzz_server
    smtp = RawSMTP(server.smtp_port)
    try:
        code, text = smtp.send(USER, account.bcc_address, transparent(raw))
    finally:
        smtp.close()
    assert code in DEFINED, (code, text)
    _check_alive(server)


# --- smuggling ------------------------------------------------------------------------

# Each ends the message "early" by a non-CRLF end-of-data some servers honour.
SMUGGLING_ENDS = [b"\n.\n", b"\r.\r", b"\r\n.\r", b"\n.\r\n", b"\r.\r\n", b"\r\n.\n"]


@pytest.mark.parametrize("fake_end", SMUGGLING_ENDS, ids=repr)
def test_smuggled_transaction_is_not_a_second_email(
        fuzz_server: tuple[Server, PortalAccount], fake_end: bytes) -> None:
    """A body with `<fake end>MAIL FROM...DATA...` is one message and one reply, not two."""
    server, account = fuzz_server
    smuggled_id = f"<{uuid.uuid4().hex}@smuggled.example>"
    smuggled = (f"MAIL FROM:<{USER}>\r\nRCPT TO:<{account.bcc_address}>\r\nDATA\r\n"
                f"From: {USER}\r\nTo: victim@acme.example\r\nSubject: smuggled\r\n"
                f"Message-ID: {smuggled_id}\r\n\r\nforged\r\n").encode()
    raw = (f"From: {USER}\r\nTo: ann@acme.example\r\nSubject: carrier\r\n"
           f"Message-ID: <{uuid.uuid4().hex}@carrier.example>\r\n\r\nhello"
           ).encode() + fake_end + smuggled
    before = _emails_logged(server, account.portal_id)
    smtp = RawSMTP(server.smtp_port)
    try:
        code, text = smtp.send(USER, account.bcc_address, raw + b"\r\n")
        assert code in DEFINED, (code, text)
        assert smtp.pending() == b"", "the server answered commands hidden in the body"
        assert smtp.command(b"NOOP")[0] == 250
    finally:
        smtp.close()
    assert _emails_logged(server, account.portal_id) - before <= 1
    with sqlite3.connect(f"file:{server.data_dir / 'inboxlog.db'}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT count(*) FROM emails WHERE message_id = ?",
                            (smuggled_id.strip("<>"),)).fetchone()[0] == 0
    _check_alive(server)


# --- a corpus of real-world messages --------------------------------------------------


def _corpus() -> list[Path]:
    if CORPUS.is_dir():
        return sorted(p for p in CORPUS.glob("msg_*.txt"))
    return sorted(FALLBACK_CORPUS.rglob("*.eml"))


def test_real_world_corpus_gets_defined_replies(
        fuzz_server: tuple[Server, PortalAccount]) -> None:
    """Each message of CPython's email test corpus, as sent and as the user's, gets a
    defined reply."""
    server, account = fuzz_server
    files = _corpus()
    assert len(files) >= 20, f"no corpus found at {CORPUS} or {FALLBACK_CORPUS}"
    codes = {}
    smtp = RawSMTP(server.smtp_port)
    try:
        for path in files:
            raw = path.read_bytes()
            # As received (From a stranger, forwarded by the user's rule), then as the
            # user's own BCC so the whole pipeline runs on it.
            as_users = b"From: " + USER.encode() + b"\n" + b"\n".join(
                line for line in raw.split(b"\n") if not line.lower().startswith(b"from:"))
            for variant in (raw, as_users):
                code, text = smtp.send(USER, account.bcc_address, transparent(variant))
                codes[path.name] = code
                assert code in DEFINED, (path.name, code, text)
    finally:
        smtp.close()
    assert list(codes.values()).count(250) >= len(files) // 2, codes
    _check_alive(server)
