"""Listing a watched folder oldest first without holding the whole listing in memory.

A folder of 10,000 (or 1,000,000) files must not become a list of 10,000 paths. The scan walks
the folder once and sorts what it finds by (mtime, path) the way an external sort does: it keeps
rows in memory until they would take about 1 MB, sorts them and writes them, as a sorted run, to a
temporary file (deleted on close), then merges the runs and the last rows in memory as it streams
them out (`heapq.merge`). So the order is exact, memory stays bounded and the folder is walked once.
A folder of a few thousand files never touches the disk. Before the first file only the walk and
the sorts are paid: a private SQLite database sorted the rows before, and its inserts were about a
quarter of a 100,000-file walk's time to its first file (BENCHMARKS.md, "thirteenth round").
"""

from __future__ import annotations

import heapq
import marshal
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO

from daemon.triggers.match import Matcher

Row = tuple[int, bytes, bool]  # (mtime_ns, path, is_symlink): sorted as tuples, so by mtime, then path

BUDGET = 1 << 20  # bytes of rows held in memory before a sorted run goes to disk
_ROW_COST = 120  # a row's Python objects beside its path's bytes (a tuple, an int, a bytes object)
MAX_RUNS = 64  # open runs at most: beyond, they are merged into one (a file each, and a block each while merging)
_BLOCK = 256  # rows read or written at a time


@dataclass(frozen=True)
class Found:
    """One wanted entry of a watched folder."""

    path: Path
    mtime_ns: int
    is_symlink: bool


def oldest_first(matcher: Matcher, *, budget: int = BUDGET, max_runs: int = MAX_RUNS) -> Iterator[Found]:
    """Every wanted file (and symlink) under the matcher's root, oldest first, streamed."""
    runs: list[IO[bytes]] = []
    try:
        rows: list[Row] = []
        size = 0
        for row in _entries(matcher, matcher.root, ()):
            rows.append(row)
            size += _ROW_COST + len(row[1])
            if size >= budget:
                rows.sort()
                runs.append(_spill(rows))
                rows, size = [], 0
                if len(runs) == max_runs:
                    merged = _spill(heapq.merge(*map(_read, runs)))
                    _close(runs)
                    runs = [merged]
        rows.sort()
        # Paths as bytes: a file name that is not valid UTF-8 still round-trips.
        for mtime_ns, path, link in heapq.merge(rows, *map(_read, runs)) if runs else rows:
            yield Found(Path(os.fsdecode(path)), mtime_ns, link)
    finally:  # also when the caller stops early (a stop, a reload): the generator is closed
        _close(runs)


def _spill(rows: Iterable[Row]) -> IO[bytes]:
    """`rows`, already in order, written to a new temporary file (gone when closed); the file, rewound."""
    run = tempfile.TemporaryFile()
    try:
        rows = iter(rows)
        while block := list(islice(rows, _BLOCK)):
            marshal.dump(block, run)  # the stdlib's fastest format for plain tuples; read back by this process only
        run.seek(0)
    except BaseException:
        run.close()
        raise
    return run


def _close(runs: list[IO[bytes]]) -> None:
    for run in runs:
        run.close()


def _read(run: IO[bytes]) -> Iterator[Row]:
    """A sorted run's rows, a block at a time."""
    while True:
        try:
            block = marshal.load(run)
        except EOFError:
            return
        yield from block


def _entries(matcher: Matcher, folder: Path, relative: tuple[str, ...]) -> Iterator[Row]:
    try:
        listing = os.scandir(folder)
    except OSError:  # vanished or unreadable: the next rescan looks again
        return
    with listing:
        subfolders = []
        for entry in listing:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            mode = info.st_mode
            if stat.S_ISDIR(mode):
                subfolders.append(entry.name)
            elif (stat.S_ISREG(mode) or stat.S_ISLNK(mode)) and matcher.wants_listed(relative, entry.name):
                yield info.st_mtime_ns, os.fsencode(entry.path), stat.S_ISLNK(mode)
    for name in subfolders:
        if matcher.wants_dir((*relative, name)):
            yield from _entries(matcher, folder / name, (*relative, name))
