"""Tracking tokens, HTML rewriting and hit classification: pure logic, no server."""

from __future__ import annotations

import base64
import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta

from itsdangerous import Signer, URLSafeSerializer

from core.tracking import TokenSigner, rewrite_html, send_tokens_in_html, strip_tracking
from core.tracking_verdicts import History, Hit, Send, Verdict, classify, count

T = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


def _hit(kind: str = "open", seconds: float = 0, agent: str = CHROME, ip: str = "203.0.113.5",
         method: str = "GET", position: int | None = None) -> Hit:
    return Hit(kind, T + timedelta(seconds=seconds), ip, agent, method, position)


def test_tokens_verify_only_with_the_same_secret() -> None:
    """A token signed with one secret is rejected by another, and tampering is caught."""
    signer, other = TokenSigner("secret-one"), TokenSigner("secret-two")
    open_token = signer.open_token("abcdefghijklmnopqrstuvwx", portal_id=7)
    assert signer.verify_open(open_token) == "abcdefghijklmnopqrstuvwx"
    assert other.verify_open(open_token) is None
    click = signer.click_token("abcdefghijklmnopqrstuvwx", 2, "https://a.example/p?q=1",
                               portal_id=7)
    assert signer.verify_click(click) == (
        "abcdefghijklmnopqrstuvwx", 2, "https://a.example/p?q=1", 7)
    assert other.verify_click(click) is None
    assert signer.verify_click(click[:-1] + ("A" if click[-1] != "A" else "B")) is None


def test_tokens_name_their_portal_and_verify_only_with_its_key() -> None:
    """Each portal's key is its own: a token moved to another portal's name, or signed
    for another portal, does not verify; the server-wide key of the first format signs
    nothing new."""
    signer = TokenSigner("secret-one")
    click = signer.click_token("abcdefghijklmnopqrstuvwx", 0, "https://a.example/", portal_id=7)
    assert click.startswith("7.")
    assert signer.verify_click("8" + click[1:]) is None
    assert signer.verify_click(click[2:]) is None  # as if of the first format
    pixel = signer.open_token("abcdefghijklmnopqrstuvwx", portal_id=7)
    assert pixel.startswith("abcdefghijklmnopqrstuvwx.7.")
    assert signer.verify_open(pixel.replace(".7.", ".8.")) is None
    assert signer.verify_open(pixel.replace(".7.", ".")) is None
    assert send_tokens_in_html(f"<img src=https://t.example/t/o/{pixel}>") == [
        "abcdefghijklmnopqrstuvwx"]


def test_tokens_of_the_first_format_still_verify_without_a_portal() -> None:
    """Tokens already in sent mail, signed with the server-wide key, still verify (their
    send is checked by the redirect), and a logged copy still gets their URL back."""
    legacy_click = URLSafeSerializer("secret-one", salt="inboxlog.click").dumps(
        ["abcdefghijklmnopqrstuvwx", 1, "https://a.example/"])
    legacy_open = Signer("secret-one", salt="inboxlog.open").sign(
        "abcdefghijklmnopqrstuvwx").decode()
    signer = TokenSigner("secret-one")
    assert signer.verify_click(legacy_click) == (
        "abcdefghijklmnopqrstuvwx", 1, "https://a.example/", None)
    assert signer.verify_open(legacy_open) == "abcdefghijklmnopqrstuvwx"
    assert TokenSigner("secret-two").verify_click(legacy_click) is None
    assert strip_tracking(f'<a href="https://t.example/t/c/{legacy_click}">a</a>') == (
        '<a href="https://a.example/">a</a>')


def test_click_tokens_never_carry_other_schemes() -> None:
    """Even a correctly signed token is refused when its URL is not http(s)."""
    signer = TokenSigner("s")
    for url in ("javascript:alert(1)", "data:text/html,x", "//evil.example/", "ftp://x/"):
        forged = "3." + signer._portal(3)[1].dumps(["abcdefghijklmnopqrstuvwx", 0, url])
        assert signer.verify_click(forged) is None
        legacy = URLSafeSerializer("s", salt="inboxlog.click").dumps(
            ["abcdefghijklmnopqrstuvwx", 0, url])
        assert signer.verify_click(legacy) is None


def test_rewrite_keeps_non_http_links_and_unescapes_urls() -> None:
    """http(s) links are rewritten with their unescaped URL; mailto and anchors stay."""
    signer = TokenSigner("s")
    html = ('<a href="https://x.example/?a=1&amp;b=2">x</a><a href="#top">t</a>'
            "<a HREF=http://y.example/>y</a><body></body>")
    result = rewrite_html(html, base_url="https://t.example/", send_token="a" * 24, portal_id=1,
                          signer=signer, track_opens=True, track_clicks=True)
    assert result.links == ["https://x.example/?a=1&b=2", "http://y.example/"]
    assert 'href="#top"' in result.html
    assert result.html.index("/t/o/") < result.html.index("</body>")
    assert send_tokens_in_html(result.html) == ["a" * 24]
    plain = rewrite_html(html, base_url="https://t.example", send_token="a" * 24, portal_id=1,
                         signer=signer, track_opens=False, track_clicks=False)
    assert plain.html == html and plain.links == []


NOT_SENT = Send()
SENT = Send(sent_at=T)


def _after(*hits: Hit, send: Send = NOT_SENT) -> History:
    history = History()
    for i, hit in enumerate(hits):
        history.add(hit, classify(hit, history=history, send=send, upcoming=hits[i + 1:]))
    return history


def _verdict(hit: Hit, *earlier: Hit, send: Send = NOT_SENT, upcoming: tuple[Hit, ...] = ()
             ) -> Verdict:
    return classify(hit, history=_after(*earlier, send=send), send=send, upcoming=upcoming)


def test_classification_rules() -> None:
    """Each rule of the classifier on its own."""
    person = _verdict(_hit())
    assert (person.machine, person.counted) == (False, True)
    assert _verdict(_hit(method="HEAD")).machine
    own = classify(_hit(ip="198.51.100.1"), history=History(),
                   send=Send(sender_ips=frozenset({"198.51.100.1"})))
    assert (own.machine, own.counted, own.label) == (False, False, "sender")
    assert _verdict(_hit(agent="Mozilla/5.0")).machine
    assert _verdict(_hit(ip="17.1.1.1", agent="Mozilla/5.0")).reason == (
        "Apple Mail Privacy Protection prefetch")
    proxy = "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"
    first = _verdict(_hit(agent=proxy))
    again = _verdict(_hit(agent=proxy, seconds=60), _hit(agent=proxy))
    assert (first.machine, first.counted) == (False, True)
    assert (again.machine, again.counted) == (False, False)
    assert _verdict(_hit("click", agent="Mimecast URL check", position=0), _hit()).machine
    burst = (_hit(), _hit("click", 1, position=0))
    assert _verdict(_hit("click", 2, position=1), *burst).machine
    assert not _verdict(_hit("click", 60, position=1), *burst).machine


def test_outlook_desktop_is_a_person() -> None:
    """Outlook for Windows' pixel fetch (ms-office) is a person reading, named as such."""
    verdict = _verdict(_hit(seconds=7200, agent="Mozilla/4.0 (compatible; ms-office; MSOffice 16)"),
                       send=SENT)
    assert (verdict.machine, verdict.counted) == (False, True)
    assert verdict.reason == "Outlook desktop (Windows), 2 h after the send"
    assert verdict.client == "Outlook desktop (Windows)"


def test_a_click_with_images_blocked_is_a_person_minutes_later() -> None:
    """No open before a click is normal (images blocked); a click at delivery is not."""
    assert not _verdict(_hit("click", 300, position=0), send=SENT).machine
    at_delivery = _verdict(_hit("click", 3, position=0), send=SENT)
    assert at_delivery.machine and "at delivery" in at_delivery.reason
    unopened = _verdict(_hit("click", 40, position=0), send=SENT)
    assert unopened.machine and "before any open" in unopened.reason
    opened = _verdict(_hit("click", 40, position=0), _hit(seconds=30), send=SENT)
    assert not opened.machine


def test_the_first_click_of_a_burst_is_caught_too() -> None:
    """Hits after a click in the same batch betray the first link of a scanner's burst."""
    later = (_hit("click", 3600.5, position=1), _hit("click", 3601, position=2))
    verdict = _verdict(_hit("click", 3600, position=0), send=SENT, upcoming=later)
    assert verdict.machine and verdict.reason == "several links clicked within seconds"


def test_scanner_ranges_and_prefetch_headers_are_machines() -> None:
    """A browser agent from a published scanner range, or a prefetch header, is a machine."""
    safe_links = _verdict(_hit("click", 3600, ip="40.107.22.5", position=0), send=SENT)
    assert safe_links.machine and "Microsoft" in safe_links.reason
    prefetch = classify(Hit("open", T, "203.0.113.5", CHROME, "GET", None, "prefetch"),
                        history=History(), send=NOT_SENT)
    assert prefetch.machine and "Purpose" in prefetch.reason


def test_open_burst_from_several_addresses_at_delivery() -> None:
    """Opens from three addresses within seconds are a prefetch burst, not three people."""
    burst = [_hit(seconds=2 + i / 10, ip=f"104.28.0.{i}",
                  agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
                        "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148")
             for i in range(3)]
    verdicts = [_verdict(hit, *burst[:i], send=SENT, upcoming=tuple(burst[i + 1:]))
                for i, hit in enumerate(burst)]
    assert all(v.machine for v in verdicts)


def test_counts_infer_an_open_from_a_click_or_a_reply() -> None:
    """No human open recorded, but a human click or a reply: one open is inferred."""
    assert count([("click", False, True)], replied=False).opens == 1
    assert count([], replied=True).opens == 1
    assert count([("open", True, True)], replied=False).opens == 0
    totals = count([("open", False, True), ("open", False, False), ("open", True, True),
                    ("click", True, True)], replied=False)
    assert (totals.opens, totals.machine_opens, totals.machine_clicks) == (1, 1, 1)


def test_logged_copies_lose_the_pixel_and_get_their_links_back() -> None:
    """strip_tracking removes inboxlog's pixel and restores the original link targets."""
    signer = TokenSigner("s")
    sent = rewrite_html('<p><a href="https://x.example/?a=1&amp;b=2">x</a></p><body></body>',
                        base_url="https://t.example", send_token="b" * 24, portal_id=1,
                        signer=signer,
                        track_opens=True, track_clicks=True).html
    assert "/t/o/" in sent and "/t/c/" in sent
    shown = strip_tracking(sent)
    assert "/t/o/" not in shown and "/t/c/" not in shown
    assert 'href="https://x.example/?a=1&amp;b=2"' in shown


def test_strip_and_rewrite_read_hostile_html_in_linear_time() -> None:
    """HTML of 100 KB that never closes a tag, or one long value full of hrefs (each took
    seconds of backtracking, strip_tracking on every logged email), is read at once;
    the pixel and the links of a real copy are still found among it."""
    signer = TokenSigner("s")
    sent = rewrite_html('<a title="x" href="https://x.example/1">x</a><body></body>',
                        base_url="https://t.example", send_token="c" * 24, portal_id=1,
                        signer=signer,
                        track_opens=True, track_clicks=True)
    token = "a" * 22
    hostile = ["<img " * 20_000, "href=." * 20_000, "<a <img " * 10_000,
               "<img /t/o/" + token + "." + "a" * 30_000]
    started = time.monotonic()
    for junk in hostile:
        shown = strip_tracking(junk + sent.html + junk)
        assert "/t/o/" not in shown.replace(junk, "") and 'href="https://x.example/1"' in shown
        again = rewrite_html(junk + '<a href="https://y.example/">y</a>',
                             base_url="https://t.example", send_token="d" * 24, portal_id=1,
                             signer=signer, track_opens=False, track_clicks=True)
        assert again.links[-1:] == ["https://y.example/"]
    assert time.monotonic() - started < 2


def test_strip_keeps_what_follows_a_click_token_and_other_images() -> None:
    """A click token inside a longer value is replaced up to its last character; images
    that are not inboxlog's pixel stay."""
    signer = TokenSigner("s")
    token = signer.click_token("e" * 24, 0, "https://x.example/a", portal_id=1)
    html = (f'<a href="https://t.example/t/c/{token}#frag">x</a>'
            '<img src="https://cdn.example/logo.png" alt="logo">'
            f'<img alt="" src="https://t.example/t/o/{"f" * 24}.sig" width="1">')
    assert strip_tracking(html) == (
        '<a href="https://x.example/a#frag">x</a>'
        '<img src="https://cdn.example/logo.png" alt="logo">')


def test_a_compressed_click_token_bomb_is_not_inflated() -> None:
    """A forged click token whose zlib payload inflates to 10 MB (in any email's HTML:
    strip_tracking reads every logged one) is left as it is, at once and in little
    memory; a real compressed token still gets its link back."""
    signer = TokenSigner("s")
    url = "https://x.example/" + "a" * 2000  # long enough for itsdangerous to compress
    real = rewrite_html(f'<a href="{url}">x</a>', base_url="https://t.example",
                        send_token="g" * 24, portal_id=1, signer=signer,
                        track_opens=False, track_clicks=True).html
    assert "/t/c/" in real and f'href="{url}"' in strip_tracking(real)
    bomb = "." + base64.urlsafe_b64encode(
        zlib.compress(b"[" + b"1," * 5_000_000 + b"1]", 9)).decode().rstrip("=")
    html = (f'<a href="https://t.example/t/c/{bomb}.c2ln">x</a>'
            f'<a href="https://t.example/t/c/1.{bomb}.c2ln">y</a>')
    tracemalloc.start()
    started = time.monotonic()
    try:
        assert strip_tracking(html) == html
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 2 and peak < 4 * 1024 * 1024
