"""The inbound spool: content-addressed, never overwriting, complete under its final name even through SIGKILL."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys

import pytest

from daemon.errors import UsageError
from daemon.inbound import InboundSpool
from tests.support import REPO, dead_pid, on_sync, wait_for


def test_put_stores_by_content_and_never_twice(tmp_path):
    spool = InboundSpool(tmp_path / "data")
    first = spool.put("form-triage", b'{"a": 1}', ".json")
    digest = hashlib.sha256(b'{"a": 1}').hexdigest()
    assert first.path == tmp_path / "data" / "inbound" / "form-triage" / f"{digest}.json"
    assert (first.sha256, first.size, first.created) == (digest, 8, True)
    assert first.path.read_bytes() == b'{"a": 1}'
    again = spool.put("form-triage", b'{"a": 1}', ".json")
    assert (again.path, again.created) == (first.path, False)
    assert sorted(p.name for p in first.path.parent.iterdir()) == [first.path.name]  # no temporaries left
    assert spool.put("mail-triage", b"x", ".EML").path.name.endswith(".eml")
    assert spool.put("mail-triage", b"y", "../../etc").path.suffix == ".bin"


@pytest.mark.parametrize("name", ["../etc", "Form", "a/b", ""])
def test_a_workflow_name_cannot_leave_the_spool(tmp_path, name):
    with pytest.raises(UsageError, match=f"^'{re.escape(name)}' is not a workflow name$"):
        InboundSpool(tmp_path).put(name, b"x", ".txt")


def test_each_folder_the_spool_creates_is_made_durable_by_a_sync_of_its_parent(tmp_path, monkeypatch):
    synced: list[str] = []
    on_sync(monkeypatch, "fsync", synced.append)
    data = tmp_path / "data"
    data.mkdir()
    spooled = InboundSpool(data).put("hook", b"body", ".txt")
    # The new names, each durable in its parent before the body's own name is: inbound/, then hook/.
    assert synced[:2] == [str(data), str(data / "inbound")]
    assert synced[-1] == str(data / "inbound" / "hook") and spooled.created
    synced.clear()
    InboundSpool(data).put("hook", b"another", ".txt")
    assert str(data) not in synced and str(data / "inbound") not in synced  # nothing new to make durable


def test_the_sweep_removes_a_dead_writers_temporary_and_follows_no_link(tmp_path):
    stale = f".gristmill-tmp-{dead_pid()}-0"
    spool = InboundSpool(tmp_path)
    spool.put("hook", b"kept", ".txt")
    (tmp_path / "inbound" / "hook" / stale).write_text("half")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / stale).write_text("not the spool's")
    (tmp_path / "inbound" / "linked").symlink_to(elsewhere)
    (tmp_path / "inbound" / "stray.txt").write_text("a file, not a folder")

    assert spool.sweep() == [tmp_path / "inbound" / "hook" / stale]
    assert (elsewhere / stale).exists() and (tmp_path / "inbound" / "stray.txt").exists()


_WRITER = """
import os, sys
from pathlib import Path
from daemon.inbound import InboundSpool
spool = InboundSpool(Path(sys.argv[1]))
n = 0
while True:
    body = os.urandom(64) * (256 * 1024)  # 16 MB, each different
    spool.put("hook", body, ".bin")
    n += 1
    print(n, flush=True)
"""


def test_sigkill_mid_write_leaves_only_complete_files_and_sweep_clears_the_rest(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env)
    try:
        wait_for(lambda: child.stdout.readline().strip() == b"2", what="two bodies written")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    folder = tmp_path / "inbound" / "hook"
    finals = [p for p in folder.iterdir() if not p.name.startswith(".")]
    assert len(finals) >= 2
    for path in finals:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem  # complete, or not there at all
    InboundSpool(tmp_path).sweep()
    assert sorted(folder.iterdir()) == sorted(finals)
