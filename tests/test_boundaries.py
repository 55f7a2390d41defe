"""The boundaries of the core (realtime/__init__.py): apps import only its public names,
its `groups` operations and its models; the core's browser files import nothing of an app.
Read from the source, so a new import across the line fails here first."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import realtime

BASE = Path(__file__).resolve().parent.parent
APPS = ["chat", "feed", "live", "ops"]
ALLOWED_MODULES = {"realtime", "realtime.models"}


def python_files(app: str) -> list[Path]:
    return sorted(p for p in (BASE / app).rglob("*.py") if "migrations" not in p.parts)


def crossings(path: Path) -> list[str]:
    """Each import of `path` that reaches into the core past its public names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("realtime.") and a.name not in ALLOWED_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "realtime":
            if node.module not in ALLOWED_MODULES:
                found.append(node.module)
            elif node.module == "realtime":
                found += [f"realtime.{a.name}" for a in node.names if a.name not in realtime.__all__]
    where = path.relative_to(BASE) if path.is_relative_to(BASE) else path.name
    return [f"{where}: {name}" for name in found]


@pytest.mark.parametrize("app", APPS)
def test_apps_use_only_the_public_names_of_the_core(app: str) -> None:
    assert [c for p in python_files(app) for c in crossings(p)] == []


def test_the_check_sees_an_import_of_an_internal(tmp_path: Path) -> None:
    sneaky = tmp_path / "probe.py"
    sneaky.write_text("from realtime.redis_clients import sync_client\nfrom realtime import _PUBLIC, publish\n")
    assert crossings(sneaky) == ["probe.py: realtime.redis_clients", "probe.py: realtime._PUBLIC"]


IMPORT = re.compile(r"""(?:\bimport\s*\(?|\bfrom)\s*["']([^"']+)["']""")


def test_the_cores_browser_files_import_nothing_of_an_app() -> None:
    core = BASE / "static" / "realtime"
    outside = [
        f"{js.name}: {spec}"
        for js in sorted(core.glob("*.js"))
        for spec in IMPORT.findall(js.read_text())
        if not (core / spec).resolve().is_relative_to(core.resolve())
    ]
    assert outside == []
    assert IMPORT.findall('import { x } from "../feed/a.js"; import("../chat/b.js")') == ["../feed/a.js", "../chat/b.js"]
