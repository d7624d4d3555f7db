"""The clock that dates tracking hits: the system's in the shipped command, a file clock
only through the test entry point, and never a crash whatever its file holds."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from core.storage.models import utcnow
from extension_api.tracking_clock import file_clock, hit_clock


def test_the_shipped_command_has_no_clock_switch() -> None:
    """`inboxlog serve` offers no option to move the clock, and hits are dated by the
    system clock unless test code replaced it in-process."""
    result = subprocess.run([sys.executable, "-m", "inboxlog.cli", "serve", "--help"],
                            capture_output=True, timeout=60, check=True)
    assert b"clock" not in result.stdout.lower()
    assert b"test" not in result.stdout.lower()
    assert hit_clock() is utcnow  # this pytest process never installs one


@pytest.mark.parametrize("content", ["1e300", "-1e300", "inf", "nan", "1e9999", "", "soon"])
def test_an_offset_out_of_range_dates_hits_now(tmp_path: Path, content: str) -> None:
    """An offset no date can take (or no number) dates the hit by the system clock: the
    pixel answers, it does not fail."""
    clock_file = tmp_path / "clock"
    clock_file.write_text(content)
    assert abs(file_clock(clock_file)() - utcnow()) < timedelta(seconds=5)


def test_the_offset_moves_hits(tmp_path: Path) -> None:
    """Seconds written in the file move each hit's time, read again for every hit."""
    clock_file = tmp_path / "clock"
    clock = file_clock(clock_file)
    clock_file.write_text("7200")
    assert abs(clock() - utcnow() - timedelta(hours=2)) < timedelta(seconds=5)
    clock_file.write_text("-60.5")
    assert abs(clock() - utcnow() + timedelta(seconds=60.5)) < timedelta(seconds=5)
