"""The start-up scan on real folders: what it lists, in which order, and links marked as links."""

from __future__ import annotations

import contextlib
import gc
import os
import random
import tempfile
import warnings
from pathlib import Path

from daemon.triggers.match import Matcher
from daemon.triggers.scan import oldest_first


def _file(path: Path, age_ns: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(path.name)
    stamp = 1_700_000_000_000_000_000 - age_ns
    os.utime(path, ns=(stamp, stamp))
    return path


def test_a_recursive_scan_lists_wanted_files_in_wanted_folders_oldest_first(tmp_path):
    old = _file(tmp_path / "deep" / "er" / "old.pdf", 900)
    mid = _file(tmp_path / "mid.pdf", 500)
    same_a = _file(tmp_path / "sub" / "a.pdf", 100)  # the same time: by path
    same_b = _file(tmp_path / "b.pdf", 100)
    _file(tmp_path / "notes.txt", 800)  # not matching the patterns
    _file(tmp_path / "x.pdf.part", 700)  # junk: a download in progress
    _file(tmp_path / "@eaDir" / "thumb.pdf", 600)  # a junk folder is not entered
    _file(tmp_path / "skip" / "c.pdf", 400)  # an ignored folder is not entered

    found = list(oldest_first(Matcher(tmp_path, patterns=("*.pdf", "**/*.pdf"), ignore=("skip/*",), recursive=True)))

    assert [f.path for f in found] == [old, mid, same_b, same_a]
    assert [f.mtime_ns for f in found] == [os.stat(p).st_mtime_ns for p in (old, mid, same_b, same_a)]
    assert not any(f.is_symlink for f in found)


def test_links_are_listed_as_links_never_followed(tmp_path):
    target_folder = tmp_path / "elsewhere"
    target = _file(target_folder / "secret.pdf", 50)
    inbox = tmp_path / "Inbox"
    inbox.mkdir()
    (inbox / "link.pdf").symlink_to(target)
    (inbox / "folder-link").symlink_to(target_folder, target_is_directory=True)
    plain = _file(inbox / "plain.pdf", 10)

    found = {f.path.name: f for f in oldest_first(Matcher(inbox, recursive=True))}

    assert set(found) == {"link.pdf", "folder-link", "plain.pdf"}  # not "secret.pdf": a linked folder is not entered
    assert found["link.pdf"].is_symlink and found["folder-link"].is_symlink and not found["plain.pdf"].is_symlink
    assert found["link.pdf"].mtime_ns == os.lstat(inbox / "link.pdf").st_mtime_ns != os.stat(target).st_mtime_ns
    assert found["plain.pdf"].path == plain


def test_a_flat_watch_does_not_look_into_subfolders(tmp_path):
    top = _file(tmp_path / "top.txt", 10)
    _file(tmp_path / "sub" / "below.txt", 20)

    assert [f.path for f in oldest_first(Matcher(tmp_path))] == [top]


def _open_files() -> int:
    """This process's open files that are unnamed temporary files, as a sorted run is."""
    where = tempfile.gettempdir()
    links = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
    return sum(link.startswith(where) and link.endswith("(deleted)") for link in links)


@contextlib.contextmanager
def closes_its_files():
    """Fails when a run's file is left to the garbage collector, which warns as it closes it.

    Only files count: another test's socket collected meanwhile warns too, and is not ours.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    left = [
        str(w.message) for w in caught if issubclass(w.category, ResourceWarning) and "unclosed file" in str(w.message)
    ]
    assert not left, left


def test_a_listing_larger_than_its_memory_budget_is_merged_from_sorted_runs_in_order(tmp_path):
    """A budget of about ten rows: 300 files make some thirty sorted runs on disk, merged four at a time."""
    rng = random.Random(5)
    paths = [_file(tmp_path / f"f{n:03d}.pdf", rng.randrange(50) * 1_000) for n in range(300)]  # many the same time
    expected = sorted(paths, key=lambda p: (os.stat(p).st_mtime_ns, os.fsencode(p)))
    opened = _open_files()

    with closes_its_files():
        found = list(oldest_first(Matcher(tmp_path), budget=2_000, max_runs=4))

    assert [f.path for f in found] == expected
    assert _open_files() == opened  # every run's temporary file closed


def test_a_listing_stopped_early_closes_its_runs(tmp_path):
    for n in range(100):
        _file(tmp_path / f"f{n:03d}.pdf", n)
    opened = _open_files()
    with closes_its_files():
        listing = oldest_first(Matcher(tmp_path), budget=2_000)
        assert next(listing).path.name == "f099.pdf"  # the oldest
        assert _open_files() > opened  # its runs are open while it streams
        listing.close()  # what a stop or a reload does to the scan's listing

    assert _open_files() == opened
