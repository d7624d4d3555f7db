"""The event loop ``serve`` runs on (inboxlog.serve.run): uvloop's when it loads, asyncio's
when it does not or INBOXLOG_EVENT_LOOP=asyncio says so."""

from __future__ import annotations

import asyncio
import sys

import pytest

from inboxlog.serve import run


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_serve_runs_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INBOXLOG_EVENT_LOOP", raising=False)
    assert run(_loop_module()).startswith("uvloop")


def test_asyncio_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INBOXLOG_EVENT_LOOP", " AsyncIO ")
    assert run(_loop_module()).startswith("asyncio")


def test_asyncio_when_uvloop_cannot_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INBOXLOG_EVENT_LOOP", raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop: ImportError
    assert run(_loop_module()).startswith("asyncio")
