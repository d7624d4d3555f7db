"""The send spool (raw messages about to be sent, then waiting to be logged) is the
owner's only, like the rest of the data dir: its directories 0700, its files 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from inbox_sync.spool import SendSpool, SpooledSend


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_spool_directories_are_0700_and_files_0600(tmp_path: Path, umask_022: None) -> None:
    spool = SendSpool(tmp_path / "data" / "send-spool")
    held = spool.hold(SpooledSend(1, "ann@ourco.example", 1, "a@b", None, b"raw"))
    aside = spool.set_aside(spool.mark_sent(held))
    assert _mode(tmp_path / "data") == 0o700
    assert _mode(spool.folder) == 0o700
    assert _mode(aside.parent) == 0o700
    assert _mode(aside) == 0o600
