"""Which files a watch wants: junk defaults, the user's ignore, patterns at any depth, depth."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.triggers.match import Matcher

ROOT = Path("/watched")

JUNK = [
    ".DS_Store", "._invoice.pdf", "Thumbs.db", "desktop.ini", ".~lock.report.odt#", "~$report.docx",
    "scan.pdf.part", "movie.crdownload", ".notes.txt.swp", "notes.txt.swp", "upload.tmp",
    "report.pdf.download", ".gristmill-tmp-123-0", "draft.txt~", ".syncthing.scan.pdf.tmp",
    "~syncthing~scan.pdf.tmp",
]  # fmt: skip
JUNK_FOLDERS = ["@eaDir", "#recycle", ".stversions", ".stfolder", "#snapshot", ".Trash-1000", ".git"]


@pytest.mark.parametrize("name", JUNK)
def test_each_junk_name_is_ignored_by_default(name):
    matcher = Matcher(ROOT)

    assert not matcher.wants(ROOT / name)
    assert matcher.wants(ROOT / "invoice.pdf")


@pytest.mark.parametrize("folder", JUNK_FOLDERS)
def test_files_in_junk_folders_are_ignored_and_not_descended(folder):
    matcher = Matcher(ROOT, recursive=True)

    assert not matcher.wants(ROOT / folder / "invoice.pdf")
    assert not matcher.wants(ROOT / "2026" / folder / "invoice.pdf")
    assert not matcher.wants_dir((folder,))
    assert matcher.wants_dir(("2026",))


def test_user_ignore_adds_to_the_defaults():
    matcher = Matcher(ROOT, ignore=("draft-*", "private/*"), recursive=True)

    assert not matcher.wants(ROOT / "draft-1.pdf")
    assert not matcher.wants(ROOT / "sub" / "draft-2.pdf")
    assert not matcher.wants(ROOT / "private" / "a.pdf")
    assert not matcher.wants(ROOT / "scan.pdf.part")  # the defaults still apply
    assert matcher.wants(ROOT / "final.pdf")
    assert matcher.wants(ROOT / "public" / "a.pdf")


def test_a_plain_pattern_matches_in_subfolders_of_a_recursive_watch_and_ignores_case():
    matcher = Matcher(ROOT, patterns=("*.pdf",), recursive=True)

    assert matcher.wants(ROOT / "a.pdf")
    assert matcher.wants(ROOT / "2026" / "03" / "SCAN.PDF")
    assert not matcher.wants(ROOT / "2026" / "notes.txt")


def test_a_pattern_with_a_slash_matches_the_relative_path():
    matcher = Matcher(ROOT, patterns=("invoices/*.pdf", "**/receipts/*.pdf"), recursive=True)

    assert matcher.wants(ROOT / "invoices" / "a.pdf")
    assert matcher.wants(ROOT / "receipts" / "b.pdf")
    assert matcher.wants(ROOT / "2026" / "receipts" / "b.pdf")
    assert not matcher.wants(ROOT / "letters" / "c.pdf")


def test_subfolders_are_not_watched_without_recursive():
    matcher = Matcher(ROOT, patterns=("*.pdf",))

    assert matcher.wants(ROOT / "a.pdf")
    assert not matcher.wants(ROOT / "sub" / "a.pdf")
    assert not matcher.wants_dir(("sub",))


def test_depth_limits_how_far_down_files_are_taken():
    matcher = Matcher(ROOT, recursive=True, depth=1)

    assert matcher.wants(ROOT / "top.txt")
    assert matcher.wants(ROOT / "one" / "a.txt")
    assert not matcher.wants(ROOT / "one" / "two" / "b.txt")
    assert matcher.wants_dir(("one",))
    assert not matcher.wants_dir(("one", "two"))


def test_files_outside_the_root_are_never_wanted():
    matcher = Matcher(ROOT, recursive=True)

    assert not matcher.wants(Path("/elsewhere/a.pdf"))
    assert not matcher.wants(Path("/watched-too/a.pdf"))


MATCHERS = [
    Matcher(ROOT),
    Matcher(ROOT, recursive=True),
    Matcher(ROOT, ignore=("draft-*", "private/*"), recursive=True),
    Matcher(ROOT, patterns=("*.pdf",), recursive=True, depth=1),
    Matcher(ROOT, patterns=("invoices/*.pdf", "**/receipts/*.pdf", "*.TXT"), recursive=True),
    Matcher(ROOT, recursive=True, exclude=(ROOT / "done", ROOT / "out" / "notes")),
]
PATHS = [
    *JUNK, "invoice.pdf", "notes.txt", "draft-1.pdf", "done", "private/a.pdf", "public/a.pdf", "2026/03/SCAN.PDF",
    "invoices/a.pdf", "invoices/2026/a.pdf", "x/receipts/r.pdf", "receipts/r.pdf", "out/notes", "out/notes.txt",
    *(f"{folder}/invoice.pdf" for folder in JUNK_FOLDERS), "a/b/c/deep.pdf",
]  # fmt: skip


@pytest.mark.parametrize("matcher", MATCHERS)
def test_what_a_scan_asks_of_a_listed_name_means_what_wants_means(matcher):
    for relative in PATHS:
        *folders, name = relative.split("/")
        if all(matcher.wants_dir(tuple(folders[: n + 1])) for n in range(len(folders))):  # the scan got there
            assert matcher.wants_listed(tuple(folders), name) == matcher.wants(ROOT / relative), relative
