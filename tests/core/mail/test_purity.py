"""core.mail is pure mail code: importing all of it loads no database library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MAIL = Path(__file__).resolve().parents[3] / "core" / "mail"


def test_core_mail_imports_no_database_code() -> None:
    """Every module of core/mail imports without sqlalchemy, a driver or core.storage."""
    modules = sorted(
        f"core.mail.{path.stem}" for path in MAIL.glob("*.py") if path.stem != "__init__"
    )
    assert len(modules) > 10
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlalchemy', 'aiosqlite', 'asyncpg', 'alembic'} or m.startswith('core.storage'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
        cwd=MAIL.parents[1],
    )
    assert out.stdout.strip() == ""
