"""ruff keeps the style (pyproject.toml's [tool.ruff]); run inside the suite so `.ci/run` checks it too."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_passes_on_the_whole_tree(command):
    done = subprocess.run([sys.executable, "-m", "ruff", *command, "."], cwd=REPO, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, f"ruff {' '.join(command)} . found:\n{done.stdout}{done.stderr}"
