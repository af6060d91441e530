"""Every test the README (and TESTING.md) names as evidence for a promise exists, so a reader can run it."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from tests.support import REPO

NAMED = re.compile(r"`(tests/test_[a-z0-9_]+\.py)::(test_[a-z0-9_]+)`")


@cache
def _tests_in(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text())
    return frozenset(node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


def _named(document: str) -> list[tuple[str, str]]:
    return NAMED.findall((REPO / document).read_text())


def test_each_promise_section_of_the_readme_names_its_evidence():
    readme = (REPO / "README.md").read_text()
    for section in ("## What a run promises", "## Crashes, outages and stopping", "## Performance"):
        body = readme.split(section, 1)[1].split("\n## ", 1)[0]
        assert "Shown by:" in body and NAMED.search(body), section


def test_every_test_named_as_evidence_exists():
    named = _named("README.md") + _named("TESTING.md")
    assert len(named) > 40
    missing = [f"{file}::{name}" for file, name in named if name not in _tests_in(REPO / file)]
    assert not missing, missing
