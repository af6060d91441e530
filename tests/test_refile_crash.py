"""A SIGKILL during `gristmill correct --refile` leaves one copy of the file; the same command again finishes it."""

from __future__ import annotations

import json
import os
import signal

import pytest

from tests.eval_support import WORKFLOW, document, name_of
from tests.support import make_home

MOVE_POINTS = ("after_intent", "after_link_before_unlink", "after_move_before_commit")
RECEIPT = 4  # a receipt in tests/eval_support.py, not a hard one


def copies(root, text: str) -> set[int]:
    """The distinct files (inodes) under `root` holding `text`: two names of one inode are one copy."""
    data = text.encode()
    return {os.lstat(p).st_ino for p in root.rglob("*") if p.is_file() and p.read_bytes() == data}


@pytest.mark.parametrize("point", MOVE_POINTS)
def test_sigkill_during_refile_leaves_one_copy_and_the_same_command_finishes(tmp_path, standin, point):
    home = make_home(tmp_path, standin.url)
    home.write_workflow("mail-room.yaml", WORKFLOW)
    text = document(RECEIPT)
    home.drop(name_of(RECEIPT), text)
    home.cli("run", "--once", check=True)
    (run,) = home.runs()
    receipts, invoices = home.docs / "Receipts", home.docs / "Invoices"
    assert (receipts / name_of(RECEIPT)).exists()
    command = ("correct", str(run["id"]), "--step", "kind", "--label", "invoice", "--refile")

    home.extra_env["GRISTMILL_FAILPOINT"] = point
    killed = home.cli(*command)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(copies(home.root, text)) == 1  # before, beside it as a hard link, or after: one copy

    del home.extra_env["GRISTMILL_FAILPOINT"]
    home.cli(*command, check=True)
    assert [p for p in home.docs.rglob("*") if p.is_file()] == [invoices / name_of(RECEIPT)]
    assert (invoices / name_of(RECEIPT)).read_text() == text
    (correction,) = json.loads(home.cli("show", str(run["id"]), "--json", check=True).stdout)["corrections"]
    assert correction["change"] == {"label": "invoice"}
    assert correction["refile"]["filed"]["action"] == "move_to"
    assert correction["refile"]["filed"]["destination"] == str(invoices / name_of(RECEIPT))
