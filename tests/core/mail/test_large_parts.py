"""Large bodies parsed to disk (core.mail._large_parts): the same ParsedMessage as parsing
in memory, with big attachments as fsynced, hashed spool files the blob store links."""

from __future__ import annotations

import base64
import gc
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import test as cpython_tests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.mail.parsing import ParsedMessage, parse_message
from core.mail.spool import SpooledFile, SpoolWriter, remove_stale
from core.storage.blobs import LocalBlobStore

EMAILS = Path(__file__).resolve().parents[2] / "emails"
CPYTHON_EMAILS = Path(cpython_tests.__file__).parent / "test_email" / "data"
MB = 1024 * 1024


def _view(parsed: ParsedMessage) -> tuple[Any, ...]:
    """Every field, attachments by their bytes."""
    parts = tuple((p.filename, p.content_type, p.content, p.inline, p.content_id, p.sha256,
                   p.size, hashlib.sha256(p.content).hexdigest()) for p in parsed.attachments)
    return (parsed.message_id, parsed.in_reply_to, parsed.references, parsed.from_,
            parsed.sender, parsed.reply_to, parsed.to, parsed.cc, parsed.resent_from,
            parsed.subject, parsed.date, parsed.text, parsed.html, parts, parsed.headers,
            parsed.thread_index, parsed.defects)


def _spooled(parsed: ParsedMessage) -> list[SpooledFile]:
    return [p.body for p in parsed.attachments if isinstance(p.body, SpooledFile)]


def _both(raw: bytes, spool: Path, threshold: int = 1) -> ParsedMessage:
    """Parse ``raw`` in memory and with spooling; they must agree. The spooling one."""
    spooled = parse_message(raw, spool_dir=spool, spool_threshold=threshold)
    assert _view(spooled) == _view(parse_message(raw))
    return spooled


def _mixed(*parts: bytes, boundary: bytes = b"b1", eol: bytes = b"\r\n") -> bytes:
    head = (b"From: Rita <rep@ourco.example>" + eol + b"To: ann@acme.example" + eol
            + b"Subject: files" + eol + b"Message-ID: <m1@ourco.example>" + eol
            + b"MIME-Version: 1.0" + eol
            + b'Content-Type: multipart/mixed; boundary="' + boundary + b'"' + eol + eol)
    body = b"".join(b"--" + boundary + eol + part + eol for part in parts)
    return head + body + b"--" + boundary + b"--" + eol


def _attachment(data: bytes, *, name: bytes = b"data.bin", cte: bytes = b"base64",
                eol: bytes = b"\r\n", encoded: bytes | None = None) -> bytes:
    if encoded is None:
        encoded = (base64.encodebytes(data).replace(b"\n", eol).rstrip(eol)
                   if cte == b"base64" else data)
    return (b"Content-Type: application/octet-stream" + eol
            + b'Content-Disposition: attachment; filename="' + name + b'"' + eol
            + b"Content-Transfer-Encoding: " + cte + eol + eol + encoded)


TEXT = b"Content-Type: text/plain; charset=utf-8\r\n\r\nThe files, as promised."


def test_a_large_attachment_is_decoded_to_an_fsynced_spool_file(tmp_path: Path) -> None:
    """A 2 MB base64 attachment is on disk, hashed, byte-exact; its file goes with it."""
    data = os.urandom(2 * MB)
    parsed = _both(_mixed(TEXT, _attachment(data)), tmp_path, threshold=MB)
    [spooled] = _spooled(parsed)
    assert spooled.path.parent == tmp_path and spooled.path.read_bytes() == data
    assert (spooled.size, spooled.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert parsed.text == "The files, as promised."
    del parsed, spooled
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_small_messages_are_not_spooled(tmp_path: Path) -> None:
    """Below the threshold everything stays in memory, as before."""
    parsed = _both(_mixed(TEXT, _attachment(b"x" * 1000)), tmp_path, threshold=MB)
    assert _spooled(parsed) == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "encoded", "spooled"), [
    ("valid", base64.encodebytes(b"\x00\x01binary" * 50), True),
    ("missing padding", b"QUJDRA", True),  # stdlib: decoded, with a padding defect
    ("a last quad of three", b"QUJDRAE", True),
    ("a last quad of one", b"QUJDR", False),
    ("invalid character", b"QUJD*RA==", False),
    ("padding in the middle", b"QQ==QUJD", False),
    ("only padding", b"====", False),
    ("empty", b"", False),
    ("trailing blank lines", base64.encodebytes(b"abc" * 300) + b"\r\n\r\n", True),
], ids=lambda v: v if isinstance(v, str) else "")
def test_base64_as_the_stdlib_decodes_it(tmp_path: Path, name: str, encoded: bytes,
                                         spooled: bool) -> None:
    """Clean or unpadded base64 is spooled with the stdlib's bytes and defect notes;
    anything the stdlib decodes on its lenient path is left to it."""
    parsed = _both(_mixed(TEXT, _attachment(b"", encoded=encoded)), tmp_path)
    assert bool(_spooled(parsed)) is spooled, name


@pytest.mark.parametrize("eol", [b"\r\n", b"\n", b"\r"], ids=["crlf", "lf", "cr"])
def test_unencoded_bodies_keep_every_byte(tmp_path: Path, eol: bytes) -> None:
    """8bit and binary bodies, with any line endings and stray CR/LF, come out as sent
    less the line ending that belongs to the boundary."""
    binary = bytes(range(256)) * 20 + b"\r\r\n\n\r" + b"--b1x\r"
    parsed = _both(_mixed(TEXT.replace(b"\r\n", eol),
                          _attachment(binary, cte=b"binary", eol=eol, name=b"binary.bin"),
                          _attachment(b"8bit \xe9\r\n" * 100, cte=b"8bit", eol=eol,
                                      name=b"data.bin"), eol=eol),
                   tmp_path)
    # Only the 8bit one: the binary one holds "--b1x", and that is never cut, to be sure.
    assert [p.filename for p in parsed.attachments if isinstance(p.body, SpooledFile)] == [
        "data.bin"] and parsed.attachments[1].content == b"8bit \xe9\r\n" * 100


def test_a_large_text_body_is_read_back_from_disk(tmp_path: Path) -> None:
    """A text/plain body over the threshold is spooled and decoded to ``text`` as usual."""
    text = "".join(f"Ligne numéro {n}\r\n" for n in range(5000)).encode("latin-1")
    raw = _mixed(b"Content-Type: text/plain; charset=iso-8859-1\r\n"
                 b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text)
    parsed = _both(raw, tmp_path, threshold=1000)
    assert parsed.text.startswith("Ligne numéro 0\nLigne numéro 1\n")


def test_a_single_part_message_body_is_spooled(tmp_path: Path) -> None:
    """A message that is one base64 attachment (no multipart) is cut too."""
    data = os.urandom(5000)
    raw = (b"From: rep@ourco.example\r\nContent-Type: application/pdf\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(data))
    parsed = _both(raw, tmp_path)
    assert [p.content for p in parsed.attachments] == [data] and _spooled(parsed)


def test_nested_parts_are_found_at_their_place(tmp_path: Path) -> None:
    """Attachments inside multipart/alternative and related are cut where they are."""
    inner = (b'Content-Type: multipart/related; boundary="rel"\r\n\r\npreamble\r\n'
             b"--rel\r\nContent-Type: text/html\r\n\r\n<img src=cid:i1>\r\n--rel\r\n"
             b"Content-Type: image/png\r\nContent-ID: <i1>\r\nContent-Transfer-Encoding: base64"
             b"\r\n\r\n" + base64.encodebytes(os.urandom(3000)) + b"--rel--\r\nepilogue\r\n")
    raw = _mixed(TEXT, inner, _attachment(os.urandom(4000)), boundary=b"=_outer '+()")
    parsed = _both(raw, tmp_path)
    assert len(_spooled(parsed)) == 2


def test_what_the_stdlib_parses_as_a_message_is_left_to_it(tmp_path: Path) -> None:
    """Attached messages, digest parts and quoted-printable bodies are not cut."""
    attached = (b"Content-Type: message/rfc822\r\n\r\nFrom: ann@acme.example\r\n"
                b"Subject: inner\r\nContent-Type: application/pdf\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(b"%PDF" * 900))
    digest = (b'Content-Type: multipart/digest; boundary="dg"\r\n\r\n--dg\r\n\r\n'
              b"From: x@y.example\r\n\r\n" + b"digest body\r\n" * 300 + b"--dg--\r\n")
    qp = b"Content-Type: text/csv\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + (
        b"a=3Db,c\r\n" * 500)
    parsed = _both(_mixed(TEXT, attached, digest, qp), tmp_path)
    assert _spooled(parsed) == []


def test_lines_that_look_like_boundaries(tmp_path: Path) -> None:
    """Boundary strings inside a body, at a line start or not, keep the stdlib's reading."""
    bodies = [b"--b1 \t\r\n", b"x--b1\r\nmore", b"--b1--x\r\n", b"--b1\rnext", b"--b1--"]
    for body in bodies:
        raw = _mixed(TEXT, _attachment(b"", cte=b"8bit", encoded=b"a" * 100 + b"\r\n" + body))
        _both(raw, tmp_path)


def test_spool_files_of_a_crash_are_removed(tmp_path: Path) -> None:
    """remove_stale removes old spool files only, and nothing else in the directory."""
    with SpoolWriter(tmp_path) as writer:
        writer.write(b"kept")
        fresh = writer.finish()
    with SpoolWriter(tmp_path) as writer:
        writer.write(b"left by a crash")
        old = writer.finish()
    os.utime(old.path, (1, 1))
    (tmp_path / "other").write_text("not a spool file")
    assert remove_stale(tmp_path, 3600) == 1
    assert fresh.path.exists() and not old.path.exists() and (tmp_path / "other").exists()


async def test_the_blob_store_links_a_spooled_file(tmp_path: Path) -> None:
    """Storing a spooled body is a hard link to its data; the blob outlives the spool
    file, and storing it again (a retried transaction) is harmless."""
    blobs = LocalBlobStore(tmp_path / "blobs")
    with SpoolWriter(blobs.spool_dir()) as writer:
        writer.write(b"attachment bytes")
        spooled = writer.finish()
    assert await blobs.put(spooled) == spooled.sha256 == hashlib.sha256(
        b"attachment bytes").hexdigest()
    assert await blobs.put(spooled, spooled.sha256) == spooled.sha256
    blob = blobs.path(spooled.sha256)
    assert blob.stat().st_ino == spooled.path.stat().st_ino
    spooled.discard()
    assert await blobs.get(spooled.sha256) == b"attachment bytes"
    assert [p.name for p in blob.parent.iterdir()] == [blob.name]  # no temporary left


# --- any structure: in memory and spooled agree -----------------------------------------


def _corpus() -> list[Path]:
    found = sorted(EMAILS.rglob("*.eml"))
    if CPYTHON_EMAILS.is_dir():
        found += sorted(CPYTHON_EMAILS.glob("msg_*.txt"))
    return found


def test_every_sample_message_parses_the_same_spooled(tmp_path: Path) -> None:
    """Each message of the test corpus and CPython's, with every body over 1 byte cut
    out where the rules allow, parses to exactly what the stdlib alone gives."""
    cut = 0
    for path in _corpus():
        raw = path.read_bytes()
        for variant in (raw, raw.replace(b"\n", b"\r\n")):
            cut += len(_spooled(_both(variant, tmp_path)))
    assert cut > 30


EOL = st.sampled_from([b"\r\n", b"\n", b"\r"])
LEAF_BODY = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=200).map(base64.encodebytes),
    st.binary(max_size=200).map(lambda b: base64.b64encode(b).rstrip(b"=")),
    st.lists(st.sampled_from([b"QUJD", b"RA==", b"\r\n", b"\n", b"=", b"*", b"--", b"--b",
                              b"--b--", b" ", b"\r", b"x" * 70]), max_size=20).map(b"".join),
)


@st.composite
def _entity(draw: st.DrawFn, depth: int = 0) -> bytes:
    eol = draw(EOL)
    if depth < 4 and draw(st.integers(0, 2)) == 0:
        boundary = draw(st.sampled_from([b"b", b"b1", b"=_x y", b"", b"b'(+)"]))
        kind = draw(st.sampled_from([b"mixed", b"alternative", b"related", b"digest"]))
        children = draw(st.lists(_entity(depth + 1), max_size=3))
        head = b"Content-Type: multipart/" + kind + b'; boundary="' + boundary + b'"' + eol
        pre = draw(st.sampled_from([b"", b"preamble" + eol, b"--" + boundary + b"x" + eol]))
        parts = b"".join(b"--" + boundary + draw(st.sampled_from([b"", b" ", b"\t "])) + eol
                         + child + eol for child in children)
        close = draw(st.sampled_from([b"--" + boundary + b"--" + eol, b"",
                                      b"--" + boundary + b"--" + eol + b"epilogue" + eol]))
        return head + eol + pre + parts + close
    ctype = draw(st.sampled_from([b"application/octet-stream", b"text/plain", b"text/html",
                                  b"image/png", b"message/rfc822", b""]))
    cte = draw(st.sampled_from([b"base64", b"BASE64", b"8bit", b"binary", b"", b"x-weird",
                                b"quoted-printable", b"base64 (c)"]))
    head = b""
    if ctype:
        head += b"Content-Type: " + ctype + eol
    if cte:
        head += b"Content-Transfer-Encoding: " + cte + eol
    if draw(st.booleans()):
        head += b'Content-Disposition: attachment; filename="f.bin"' + eol
    separator = draw(st.sampled_from([eol, eol, b""]))  # b"": no empty line after headers
    return head + separator + draw(LEAF_BODY)


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(entity=_entity(), eol=EOL)
def test_any_mime_parses_the_same_spooled(tmp_path: Path, entity: bytes, eol: bytes) -> None:
    """Generated MIME (nesting, odd boundaries, boundary-like body lines, bare CR/LF,
    broken base64, missing separators) parses the same with every body cut out."""
    _both(b"From: rep@ourco.example" + eol + b"MIME-Version: 1.0" + eol + entity, tmp_path)
