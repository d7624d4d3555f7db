"""Tracking tokens, HTML rewriting and hit classification: pure logic, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.tracking import (
    History,
    Hit,
    TokenSigner,
    classify,
    count,
    rewrite_html,
    send_tokens_in_html,
    strip_tracking,
)

T = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


def _hit(kind: str = "open", seconds: float = 0, agent: str = CHROME, ip: str = "203.0.113.5",
         method: str = "GET", position: int | None = None) -> Hit:
    return Hit(kind, T + timedelta(seconds=seconds), ip, agent, method, position)


def test_tokens_verify_only_with_the_same_secret() -> None:
    """A token signed with one secret is rejected by another, and tampering is caught."""
    signer, other = TokenSigner("secret-one"), TokenSigner("secret-two")
    open_token = signer.open_token("abcdefghijklmnopqrstuvwx")
    assert signer.verify_open(open_token) == "abcdefghijklmnopqrstuvwx"
    assert other.verify_open(open_token) is None
    click = signer.click_token("abcdefghijklmnopqrstuvwx", 2, "https://a.example/p?q=1")
    assert signer.verify_click(click) == ("abcdefghijklmnopqrstuvwx", 2, "https://a.example/p?q=1")
    assert other.verify_click(click) is None
    assert signer.verify_click(click[:-1] + ("A" if click[-1] != "A" else "B")) is None


def test_click_tokens_never_carry_other_schemes() -> None:
    """Even a correctly signed token is refused when its URL is not http(s)."""
    signer = TokenSigner("s")
    forged = signer._click.dumps(["abcdefghijklmnopqrstuvwx", 0, "javascript:alert(1)"])
    assert signer.verify_click(forged) is None


def test_rewrite_keeps_non_http_links_and_unescapes_urls() -> None:
    """http(s) links are rewritten with their unescaped URL; mailto and anchors stay."""
    signer = TokenSigner("s")
    html = ('<a href="https://x.example/?a=1&amp;b=2">x</a><a href="#top">t</a>'
            "<a HREF=http://y.example/>y</a><body></body>")
    result = rewrite_html(html, base_url="https://t.example/", send_token="a" * 24,
                          signer=signer, track_opens=True, track_clicks=True)
    assert result.links == ["https://x.example/?a=1&b=2", "http://y.example/"]
    assert 'href="#top"' in result.html
    assert result.html.index("/t/o/") < result.html.index("</body>")
    assert send_tokens_in_html(result.html) == ["a" * 24]
    plain = rewrite_html(html, base_url="https://t.example", send_token="a" * 24,
                         signer=signer, track_opens=False, track_clicks=False)
    assert plain.html == html and plain.links == []


def _after(*hits: Hit) -> History:
    history = History()
    for hit in hits:
        history.add(hit)
    return history


def test_classification_rules() -> None:
    """Each rule of the classifier on its own."""
    none = History()
    person = classify(_hit(), history=none, sender_ips=set())
    assert (person.machine, person.counted) == (False, True)
    assert classify(_hit(method="HEAD"), history=none, sender_ips=set()).machine
    own = classify(_hit(ip="198.51.100.1"), history=none, sender_ips={"198.51.100.1"})
    assert (own.machine, own.counted) == (False, False)
    assert classify(_hit(agent="Mozilla/5.0"), history=none, sender_ips=set()).machine
    assert classify(_hit(ip="17.1.1.1"), history=none, sender_ips=set()).machine
    proxy = "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"
    first = classify(_hit(agent=proxy), history=none, sender_ips=set())
    again = classify(_hit(agent=proxy, seconds=60), history=_after(_hit(agent=proxy)),
                     sender_ips=set())
    assert (first.machine, first.counted) == (False, True)
    assert (again.machine, again.counted) == (False, False)
    assert classify(_hit("click", agent="Mimecast URL check", position=0),
                    history=_after(_hit()), sender_ips=set()).machine
    assert classify(_hit("click", position=0), history=none, sender_ips=set()).reason == (
        "click before any open")
    burst = _after(_hit(), _hit("click", 1, position=0))
    assert classify(_hit("click", 2, position=1), history=burst, sender_ips=set()).machine
    slow = _after(_hit(), _hit("click", 1, position=0))
    assert not classify(_hit("click", 60, position=1), history=slow, sender_ips=set()).machine


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
                        base_url="https://t.example", send_token="b" * 24, signer=signer,
                        track_opens=True, track_clicks=True).html
    assert "/t/o/" in sent and "/t/c/" in sent
    shown = strip_tracking(sent)
    assert "/t/o/" not in shown and "/t/c/" not in shown
    assert 'href="https://x.example/?a=1&amp;b=2"' in shown
