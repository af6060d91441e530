"""Every library the daemon imports is declared in pyproject.toml.

A package that only arrives as another package's dependency works on the machine that has it and
breaks on a fresh install (charset-normalizer did, for non-UTF-8 text files).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_top_level(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"daemon"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_library_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # Optional backends come as extras (psycopg: `postgres`) and are imported only when configured.
    specs = project["dependencies"] + project["optional-dependencies"]["postgres"]
    declared = {_normalise(re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0]) for spec in specs}
    # pydantic-core comes with pydantic, always at the version pydantic pins.
    declared.add("pydantic-core")
    owners = packages_distributions()
    undeclared = {
        module: owners.get(module, ["(not installed)"])
        for module in _imported_top_level(ROOT / "daemon")
        if not declared & {_normalise(d) for d in owners.get(module, [])}
    }
    assert undeclared == {}, f"imported but not in pyproject.toml's dependencies: {undeclared}"
