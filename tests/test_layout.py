"""The shape STYLE.md asks for: core depends on no adapter."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = {"smtp_ingest", "extension_api", "inbox_sync", "inboxlog"}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_adapter() -> None:
    """No module under core/ imports smtp_ingest, extension_api, inbox_sync or the CLI."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) & ADAPTERS)
        for path in (ROOT / "core").rglob("*.py")
        if _imported_packages(path) & ADAPTERS
    }
    assert offenders == {}


def test_adapters_do_not_import_each_other() -> None:
    """smtp_ingest and extension_api talk only to core, never to each other."""
    for package, other in (("smtp_ingest", "extension_api"), ("extension_api", "smtp_ingest")):
        for path in (ROOT / package).rglob("*.py"):
            assert other not in _imported_packages(path), path
