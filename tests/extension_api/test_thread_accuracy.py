"""Threading on real list mail: the notmuch and LKML archives logged through
`POST /api/v1/emails/log` in shuffled order give notmuch's threads (scripts/thread_accuracy.py;
notmuch's answer is committed in tests/emails/lists/notmuch-threads.json)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "thread_accuracy.py"


@pytest.fixture(scope="module")
def accuracy() -> ModuleType:
    spec = importlib.util.spec_from_file_location("thread_accuracy", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_expectation_covers_every_archived_message(accuracy: ModuleType) -> None:
    """Each archived file is in exactly one message of notmuch's committed answer."""
    expected = accuracy.load_expected()
    assert sorted(expected) == accuracy.archives()
    for archive, threads in expected.items():
        files = [f for thread in threads for message in thread for f in message["files"]]
        assert sorted(files) == [p.name for p in accuracy.archive_files(archive)]


def test_threads_of_real_list_mail_match_notmuch(
    accuracy: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every message is logged, no difference from notmuch is unexplained, and at least
    99% of notmuch's threads come out exact or differ by design only."""
    with accuracy.scratch() as tmp:
        report = accuracy.run(20261201, accuracy.archives(), Path(tmp) / "server")
    accuracy.print_report(report)
    assert accuracy.passes(report), capsys.readouterr().out
    assert report.precision == 1.0  # inboxlog never joins what notmuch keeps apart
