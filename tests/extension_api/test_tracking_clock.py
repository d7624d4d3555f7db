"""The test clock that dates tracking hits: refused outside test mode, and never a crash
whatever its file holds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from core.models import utcnow
from extension_api.tracking_clock import TEST_MODE_VARIABLE, ClockRefused, hit_clock


def test_the_test_clock_needs_test_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without INBOXLOG_TEST_MODE=1 a clock file is refused; without one it is the system's."""
    monkeypatch.delenv(TEST_MODE_VARIABLE, raising=False)
    with pytest.raises(ClockRefused):
        hit_clock(tmp_path / "clock")
    assert hit_clock(None) is utcnow


@pytest.mark.parametrize("content", ["1e300", "-1e300", "inf", "nan", "1e9999", "", "soon"])
def test_an_offset_out_of_range_dates_hits_now(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               content: str) -> None:
    """An offset no date can take (or no number) dates the hit by the system clock: the
    pixel answers, it does not fail."""
    monkeypatch.setenv(TEST_MODE_VARIABLE, "1")
    clock_file = tmp_path / "clock"
    clock_file.write_text(content)
    assert abs(hit_clock(clock_file)() - utcnow()) < timedelta(seconds=5)


def test_the_offset_moves_hits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds written in the file move each hit's time, read again for every hit."""
    monkeypatch.setenv(TEST_MODE_VARIABLE, "1")
    clock_file = tmp_path / "clock"
    clock = hit_clock(clock_file)
    clock_file.write_text("7200")
    assert abs(clock() - utcnow() - timedelta(hours=2)) < timedelta(seconds=5)
    clock_file.write_text("-60.5")
    assert abs(clock() - utcnow() + timedelta(seconds=60.5)) < timedelta(seconds=5)
