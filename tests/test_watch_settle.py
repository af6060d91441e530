"""The settle tracker with an injected clock, the streamed oldest-first scan, the seen-cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc

from daemon.triggers.match import Matcher
from daemon.triggers.scan import oldest_first
from daemon.triggers.settle import SettleTracker
from daemon.triggers.submitted import Submitted


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_file_is_ready_once_unchanged_for_its_settle_time(tmp_path):
    clock, path = Clock(), tmp_path / "scan.pdf"
    path.write_bytes(b"page 1")
    tracker = SettleTracker(clock)
    tracker.touch(path, 2.0)

    clock.now += 1.9
    assert tracker.ready() == []
    assert tracker.next_check() is not None and tracker.next_check() <= 0.1 + 1e-9
    clock.now += 0.1
    assert tracker.ready() == [path]
    assert len(tracker) == 0 and tracker.next_check() is None


def test_a_growing_file_restarts_the_wait_each_time_it_changes(tmp_path):
    clock, path = Clock(), tmp_path / "scan.pdf"
    path.write_bytes(b"page 1")
    tracker = SettleTracker(clock)
    tracker.touch(path, 2.0)
    for page in range(2, 6):  # a scanner adding a page every 1.5 s, never 2 s quiet
        clock.now += 1.5
        with open(path, "ab") as out:
            out.write(f"page {page}".encode())
        assert tracker.ready() == []

    clock.now += 1.9
    assert tracker.ready() == []
    clock.now += 0.1
    assert tracker.ready() == [path]


def test_the_fast_path_is_taken_only_while_the_file_stays_unchanged(tmp_path):
    clock, path = Clock(), tmp_path / "renamed.pdf"
    path.write_bytes(b"complete")
    tracker = SettleTracker(clock)
    tracker.touch(path, 2.0, wait=0.0)
    assert tracker.ready() == [path]

    tracker.touch(path, 2.0, wait=0.5)
    with open(path, "ab") as out:  # written again after the close: the full wait applies
        out.write(b" more")
    clock.now += 0.5
    assert tracker.ready() == []
    clock.now += 1.9
    assert tracker.ready() == []
    clock.now += 0.1
    assert tracker.ready() == [path]


def test_a_file_that_vanishes_or_becomes_a_link_is_dropped(tmp_path):
    clock, gone, link = Clock(), tmp_path / "gone.pdf", tmp_path / "link.pdf"
    gone.write_bytes(b"x")
    link.write_bytes(b"y")
    tracker = SettleTracker(clock)
    tracker.touch(gone, 1.0)
    tracker.touch(link, 1.0)
    gone.unlink()
    link.unlink()
    link.symlink_to(tmp_path / "elsewhere")

    clock.now += 5
    assert tracker.ready() == []
    assert len(tracker) == 0


def _fill(folder, count, *, start=1_600_000_000):
    """`count` files whose mtimes run backwards against their names."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        path = folder / f"f{n:05d}.txt"
        path.write_bytes(b"x")
        mtime = (start + (count - n) * 10) * 10**9
        os.utime(path, ns=(mtime, mtime))


def test_the_scan_yields_every_file_oldest_first_across_subfolders(tmp_path):
    _fill(tmp_path / "in", 250)
    _fill(tmp_path / "in" / "sub", 120, start=1_600_000_005)
    (tmp_path / "in" / "Thumbs.db").write_bytes(b"junk")
    (tmp_path / "in" / "link.txt").symlink_to(tmp_path / "in" / "f00000.txt")
    matcher = Matcher(tmp_path / "in", recursive=True)

    found = list(oldest_first(matcher))

    files = [f for f in found if not f.is_symlink]
    assert len(files) == 370 and len({f.path for f in files}) == 370
    assert [f.mtime_ns for f in files] == sorted(f.mtime_ns for f in files)
    assert [f.path.name for f in found if f.is_symlink] == ["link.txt"]
    assert all(f.path.name != "Thumbs.db" for f in found)


_MEASURE = """
import json, sys, tracemalloc
from pathlib import Path
from daemon.triggers.match import Matcher
from daemon.triggers.scan import oldest_first
folder = Path(sys.argv[1])
matcher = Matcher(folder)
assert sum(1 for _ in oldest_first(matcher)) == 10_000  # warm caches (imports, patterns) first
tracemalloc.start()
names, count = [], 0
for found in oldest_first(matcher):
    names = names or [found.path.name]
    count += 1
streamed = tracemalloc.get_traced_memory()[1]
tracemalloc.reset_peak()
listed = sorted((p.stat().st_mtime_ns, p) for p in folder.iterdir())
print(json.dumps({"first": names[0], "count": count, "streamed": streamed,
                  "listed": tracemalloc.get_traced_memory()[1], "listed_first": listed[0][1].name}))
"""


def test_the_scan_of_10000_files_does_not_hold_them_in_memory(tmp_path):
    _fill(tmp_path / "in", 10_000)

    # A fresh process, so no other test's threads allocate while tracemalloc watches.
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(tmp_path / "in")],
                         capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    m = json.loads(out.stdout)

    assert m["count"] == 10_000 and m["first"] == m["listed_first"] == "f09999.txt"
    # A sorted list of 10,000 paths costs ~5 MB; the streamed scan about 1 MB (its sorted runs wait on disk).
    assert m["streamed"] < m["listed"] / 4, m


def test_the_seen_cache_remembers_versions_and_forgets_the_least_recent():
    seen = Submitted(limit=2)
    seen.add(("wf", "/a"), (1, 10, 100))
    seen.add(("wf", "/b"), (2, 10, 100))

    assert seen.has(("wf", "/a"), (1, 10, 100))
    assert not seen.has(("wf", "/a"), (1, 11, 200))  # a new version of the file
    seen.add(("wf", "/c"), (3, 10, 100))  # /b is now the least recent

    assert not seen.has(("wf", "/b"), (2, 10, 100))
    assert seen.has(("wf", "/a"), (1, 10, 100)) and len(seen) == 2


def test_the_seen_cache_keeps_a_100000_file_backlog_small():
    """Entries are hashes, not paths: about 180 bytes each instead of 400 (BENCHMARKS.md, backlog)."""
    seen = Submitted(limit=10_000)
    tracemalloc.start()
    try:
        for n in range(10_000):
            seen.add(("inbox", f"/home/someone/Documents/Inbox/scanned-letter-{n:06d}.pdf"), (n, 80, 1_733_150_000 + n))
        per_entry = tracemalloc.get_traced_memory()[0] / 10_000
    finally:
        tracemalloc.stop()
    assert per_entry < 250, f"{per_entry:.0f} bytes per remembered file"
    assert seen.has(("inbox", "/home/someone/Documents/Inbox/scanned-letter-000042.pdf"), (42, 80, 1_733_150_042))
