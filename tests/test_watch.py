"""The watcher with real watchdog observers on real temp folders: settle, junk, links, polling, rescan."""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from pathlib import Path

import pytest
from watchdog.observers import Observer

from daemon.errors import InputError
from daemon.triggers.match import JUNK_NAMES
from daemon.triggers.watch import Watcher
from daemon.workflow import Workflow, load_workflows
from tests.support import wait_for

DEADLINE = 30.0


class Recorder:
    """Stands in for Intake (`file`, `files`, `refuse`): remembers what was handed over, and the content then."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.submitted: list[tuple[str, bytes]] = []
        self.refused: list[tuple[str, str]] = []

    def file(self, workflow: Workflow, path: Path) -> tuple[None, bool]:
        """Intake's `file`: here only noted."""
        with self.lock:
            self.submitted.append((path.name, path.read_bytes()))
        return None, True

    def files(self, pairs: list[tuple[Workflow, Path]]) -> list[tuple[None, bool] | Exception]:
        """Intake's `files`: each file's outcome, as `file` would give it."""
        outcomes: list[tuple[None, bool] | Exception] = []
        for workflow, path in pairs:
            try:
                outcomes.append(self.file(workflow, path))
            except OSError as exc:  # gone before it was read: intake would say InputError
                outcomes.append(InputError(str(exc)))
        return outcomes

    def refuse(self, workflow: Workflow, path: Path, reason: str) -> None:
        with self.lock:
            self.refused.append((path.name, reason))

    def names(self) -> list[str]:
        with self.lock:
            return [name for name, _ in self.submitted]


def _workflow(tmp_path: Path, inbox: Path, extra: str = "") -> Workflow:
    folder = tmp_path / "workflows"
    folder.mkdir(exist_ok=True)
    (folder / "w.yaml").write_text(
        f"name: w\ntrigger:\n  watch:\n    path: {inbox}\n{extra}steps:\n  - route: {{default: keep}}\n"
    )
    workflows, errors = load_workflows(folder)
    assert not errors, errors
    return workflows["w"]


@pytest.fixture
def watching(tmp_path):
    """Start a watcher on tmp/Inbox with the given watch options; stopped after the test."""
    started: list[Watcher] = []
    inbox = tmp_path / "Inbox"

    def start(options: str = "    settle_seconds: 0.3\n", **kwargs) -> tuple[Watcher, Recorder]:
        recorder = Recorder()
        watcher = Watcher(recorder, **kwargs)  # type: ignore[arg-type]  (the recorder stands in for Intake)
        watcher.configure([_workflow(tmp_path, inbox, options)])
        watcher.start()
        started.append(watcher)
        return watcher, recorder

    yield inbox, start
    for watcher in started:
        watcher.stop()


def _quiet(watcher: Watcher) -> bool:
    return len(watcher.tracker) == 0 and watcher._events.empty()


def test_a_slow_writer_holding_the_file_open_is_submitted_once_complete(watching):
    inbox, start = watching
    watcher, rec = start("    settle_seconds: 0.6\n")
    pages = [f"page {n}\n".encode() * 100 for n in range(6)]
    with open(inbox / "scan.pdf", "wb") as out:
        for page in pages:  # a scanner: one page every 0.2 s, each flushed to disk
            out.write(page)
            out.flush()
            time.sleep(0.2)

    wait_for(lambda: rec.submitted, timeout=DEADLINE, what="the scan to be submitted")
    wait_for(lambda: _quiet(watcher), timeout=DEADLINE, what="the watcher to settle")
    assert rec.submitted == [("scan.pdf", b"".join(pages))]


def test_a_writer_that_reopens_the_file_for_each_page_is_submitted_once(watching):
    inbox, start = watching
    watcher, rec = start("    settle_seconds: 1.0\n")
    for n in range(5):  # each page closes the file: close-after-write alone is not "complete"
        with open(inbox / "scan.pdf", "ab") as out:
            out.write(f"page {n}\n".encode())
        time.sleep(0.1)

    wait_for(lambda: rec.submitted, timeout=DEADLINE, what="the scan to be submitted")
    wait_for(lambda: _quiet(watcher), timeout=DEADLINE, what="the watcher to settle")
    assert rec.submitted == [("scan.pdf", b"".join(f"page {n}\n".encode() for n in range(5)))]


def test_a_temporary_name_renamed_into_place_is_taken_at_once_and_only_then(watching):
    inbox, start = watching
    watcher, rec = start("    settle_seconds: 60\n")  # only the rename fast path can be in time
    (inbox / "report.pdf.part").write_bytes(b"half")
    with open(inbox / "report.pdf.part", "ab") as out:
        out.write(b" and the rest")
    os.rename(inbox / "report.pdf.part", inbox / "report.pdf")

    wait_for(lambda: rec.submitted, timeout=DEADLINE, what="the renamed file to be submitted")
    assert rec.submitted == [("report.pdf", b"half and the rest")]


def test_every_default_junk_pattern_is_ignored_by_a_live_watch(watching):
    inbox, start = watching
    watcher, rec = start()
    junk = [p.replace("*", "x").replace("?", "p") for p in JUNK_NAMES]
    for name in junk:
        (inbox / name).write_bytes(b"junk")
    (inbox / "real.txt").write_bytes(b"a document")

    wait_for(lambda: "real.txt" in rec.names(), timeout=DEADLINE, what="real.txt")
    wait_for(lambda: _quiet(watcher), timeout=DEADLINE, what="the watcher to settle")
    assert len(junk) > 15 and rec.names() == ["real.txt"]


def test_user_ignore_patterns_apply_in_subfolders_of_a_recursive_watch(watching):
    inbox, start = watching
    watcher, rec = start('    patterns: ["*.pdf"]\n    ignore: ["draft-*"]\n    recursive: true\n'
                         "    depth: 1\n    settle_seconds: 0.3\n")  # fmt: skip
    (inbox / "2026" / "deep").mkdir(parents=True)
    (inbox / "2026" / "draft-1.pdf").write_bytes(b"draft")
    (inbox / "2026" / "deep" / "too-deep.pdf").write_bytes(b"deep")
    (inbox / "2026" / "notes.txt").write_bytes(b"not a pdf")
    (inbox / "2026" / "SCAN.PDF").write_bytes(b"wanted")

    wait_for(lambda: rec.submitted, timeout=DEADLINE, what="SCAN.PDF")
    wait_for(lambda: _quiet(watcher), timeout=DEADLINE, what="the watcher to settle")
    assert rec.submitted == [("SCAN.PDF", b"wanted")]


def test_a_symlink_is_refused_once_with_the_reason(watching, tmp_path):
    inbox, start = watching
    watcher, rec = start()
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the model")
    (inbox / "innocent.txt").symlink_to(secret)
    wait_for(lambda: rec.refused, timeout=DEADLINE, what="the link to be refused")

    os.utime(inbox / "innocent.txt", follow_symlinks=False)  # more events about the same link
    watcher.scan()
    (inbox / "after.txt").write_bytes(b"x")
    wait_for(lambda: rec.names() == ["after.txt"], timeout=DEADLINE, what="after.txt")
    wait_for(lambda: _quiet(watcher), timeout=DEADLINE, what="the watcher to settle")

    assert rec.refused == [
        ("innocent.txt", f"{inbox / 'innocent.txt'} is a symbolic link; gristmill does not follow links")
    ]


def test_poll_true_finds_files_without_inotify(watching):
    inbox, start = watching
    watcher, rec = start("    poll: true\n    poll_interval: 0.2\n    settle_seconds: 0.3\n")
    assert all(type(o).__name__ == "PollingObserver" for o in watcher._observers)
    (inbox / "share.txt").write_bytes(b"from the NAS")

    wait_for(lambda: rec.submitted, timeout=DEADLINE, what="the polled file")
    assert rec.submitted == [("share.txt", b"from the NAS")]


class _LimitedInotify(Observer):
    """inotify as it behaves at the watch limit: scheduling raises what watchdog raises there."""

    def schedule(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_the_inotify_watch_limit_falls_back_to_polling_and_says_what_to_raise(watching, caplog):
    inbox, start = watching
    with caplog.at_level(logging.WARNING, logger="gristmill"):
        watcher, rec = start("    poll_interval: 0.2\n    settle_seconds: 0.3\n", observer_factory=_LimitedInotify)
    lines = [r.getMessage() for r in caplog.records if "inotify" in r.getMessage()]
    assert len(lines) == 1 and "fs.inotify.max_user_watches" in lines[0] and "polling" in lines[0]
    (inbox / "a.txt").write_bytes(b"still found")

    wait_for(lambda: rec.submitted, timeout=DEADLINE, what="the file, found by polling")
    assert rec.submitted == [("a.txt", b"still found")]


def test_the_rescan_finds_files_whose_events_were_lost_and_submits_each_version_once(watching):
    inbox, start = watching
    inbox.mkdir()
    old = inbox / "lost.txt"
    old.write_bytes(b"no event was seen for me")
    os.utime(old, (time.time() - 60, time.time() - 60))
    watcher, rec = start(rescan_seconds=0.2)  # no start-up scan: only the rescan can find it

    wait_for(lambda: rec.submitted, timeout=DEADLINE, what="the rescan to find lost.txt")
    wait_for(lambda: watcher.rescans >= 4, timeout=DEADLINE, what="several rescans")
    assert rec.submitted == [("lost.txt", b"no event was seen for me")]


def test_a_scan_settles_recent_files_and_submits_old_ones_oldest_first(tmp_path):
    inbox = tmp_path / "Inbox"
    inbox.mkdir()
    for name, age in (("b.txt", 300), ("a.txt", 200), ("c.txt", 400)):
        (inbox / name).write_bytes(name.encode())
        os.utime(inbox / name, (time.time() - age, time.time() - age))
    (inbox / "fresh.txt").write_bytes(b"just written")
    rec = Recorder()
    watcher = Watcher(rec)  # type: ignore[arg-type]
    watcher.configure([_workflow(tmp_path, inbox, "    settle_seconds: 0.5\n")])

    assert watcher.scan() == 4
    assert rec.names() == ["c.txt", "b.txt", "a.txt"]  # fresh.txt waits to settle
    watcher.settle_pending()
    assert rec.names() == ["c.txt", "b.txt", "a.txt", "fresh.txt"]
    assert watcher.scan() == 0  # nothing new: no second submission, no hashing
