"""The labelled request set through the classifier: every person kept, every machine caught."""

from __future__ import annotations

from tests.tracking_requests.labelled import load, manifest, replay, right

REQUIRED_CLASSES = {
    "Outlook desktop (Windows)", "Outlook for Mac", "new Outlook (Windows)", "Outlook on the web",
    "Gmail (web and apps, image proxy)", "Apple Mail without MPP", "Apple Mail with MPP",
    "iOS mail apps", "Android mail apps", "Thunderbird", "Yahoo Mail", "Yahoo Mail image proxy",
    "Samsung Email", "Superhuman", "Microsoft Defender Safe Links", "Proofpoint URL Defense",
    "Mimecast URL Protect", "Barracuda link protection", "Prefetch and HEAD",
}


def test_every_case_cites_its_sources_and_the_classes_are_covered() -> None:
    """Each case names sources the manifest has, and every required class has a case."""
    sources = manifest()
    cases = load()
    assert len({c.id for c in cases}) == len(cases)
    for case in cases:
        assert case.sources and set(case.sources) <= set(sources), case.id
        assert case.label in ("person", "machine"), case.id
    assert {c.klass for c in cases} >= REQUIRED_CLASSES
    for source in sources.values():
        assert source["url"].startswith("https://")


def test_no_person_is_a_machine_and_no_machine_a_person() -> None:
    """The goal on the published set: every verdict right, with the reason it gives."""
    wrong = [(case.id, verdict.reason) for case in load() for verdict in replay(case)
             if not right(case, verdict)]
    assert wrong == []
