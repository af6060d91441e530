"""Which files in a watched folder belong to a workflow: patterns, junk defaults, depth."""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

# Files that are never documents: OS metadata, editor locks, partial downloads, sync tools' state.
JUNK_NAMES = (
    ".DS_Store", "._*", "Thumbs.db", "desktop.ini", ".~lock*", "~$*", "*.part", "*.crdownload",
    "*.swp", "*.swx", "*.tmp", "*.download", ".gristmill-tmp-*", ".*.sw?", "*~",
    ".syncthing.*", "~syncthing~*", ".stversions", ".stfolder",
)  # fmt: skip
# Folders whose content is never a document drop.
JUNK_DIRS = ("@eaDir", "#recycle", ".stversions", ".stfolder", "#snapshot", ".Trash-*", ".git")


@dataclass(frozen=True)
class Matcher:
    """Decides whether a path under `root` is a file the workflow wants.

    `wants` runs for every event and, in a scan, for every entry of the folder (100,000 of them in
    a large backlog), so it works on strings with the patterns compiled once into one regular
    expression each; it means what `fnmatch.fnmatchcase` per pattern meant (tests/test_matcher.py).
    """

    root: Path
    patterns: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    recursive: bool = False
    depth: int | None = None
    # Where the workflow itself puts files inside its watch: never taken as new input.
    exclude: tuple[Path, ...] = ()
    _compiled: _Compiled = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", _Compiled.of(self))

    def wants(self, path: Path | str) -> bool:
        """True when `path` is inside the watch, not junk, not ignored, and matches a pattern."""
        c = self._compiled
        absolute = os.path.abspath(path)
        if not absolute.startswith(c.prefix):
            return False
        if any(absolute == out or absolute.startswith(out + "/") for out in c.exclude):
            return False
        relative = absolute[len(c.prefix) :]
        *folders, name = relative.split("/")
        if folders and not self.recursive:
            return False
        if self.depth is not None and len(folders) > self.depth:
            return False
        if folders and any(c.junk_dirs.match(part) for part in folders):
            return False
        return self._wants_name(relative, name)

    def wants_listed(self, folders: tuple[str, ...], name: str) -> bool:
        """`wants` for a file a scan listed in the folder `folders` (relative), which `wants_dir` let it into.

        Only the checks on the name are left (the folder's were made once, for the folder): a
        quarter of `wants`'s cost, for each of a backlog's 100,000 files before the first is queued.
        """
        c = self._compiled
        relative = "/".join((*folders, name)) if folders else name
        if c.exclude and c.prefix + relative in c.exclude:
            return False
        return self._wants_name(relative, name)

    def _wants_name(self, relative: str, name: str) -> bool:
        """The checks on the file itself, its folder let in: not junk, not ignored, matching a pattern."""
        c = self._compiled
        if c.junk_names.match(name):
            return False
        if c.ignore is not None and c.ignore.matches(relative, name):
            return False
        return c.patterns is None or c.patterns.matches(relative, name)

    def wants_dir(self, relative_parts: tuple[str, ...]) -> bool:
        """Whether a scan should descend into a subfolder at this relative path."""
        if not self.recursive or any(_any(p, JUNK_DIRS) for p in relative_parts):
            return False
        if self._excluded(self.root.joinpath(*relative_parts)):
            return False
        return self.depth is None or len(relative_parts) <= self.depth

    def _excluded(self, path: Path) -> bool:
        return any(path == out or out in path.parents for out in self.exclude)


@dataclass(frozen=True)
class _Patterns:
    """Case-blind patterns: those without a slash match the name, those with one the relative path."""

    name: re.Pattern[str] | None
    path: re.Pattern[str] | None

    @classmethod
    def of(cls, patterns: tuple[str, ...]) -> _Patterns | None:
        if not patterns:
            return None
        lowered = [p.lower() for p in patterns]
        by_path = tuple(q for p in lowered if "/" in p for q in (p, p.replace("**/", "")))
        return cls(_one(tuple(p for p in lowered if "/" not in p)), _one(by_path))

    def matches(self, relative: str, name: str) -> bool:
        """`_matches` of old, on strings: `*.pdf` takes `SCAN.PDF` from a scanner."""
        if self.name is not None and self.name.match(name.lower()):
            return True
        return self.path is not None and self.path.match(relative.lower()) is not None


@dataclass(frozen=True)
class _Compiled:
    """A matcher's root, exclusions and patterns as strings and regular expressions."""

    prefix: str
    exclude: tuple[str, ...]
    junk_names: re.Pattern[str]
    junk_dirs: re.Pattern[str]
    ignore: _Patterns | None
    patterns: _Patterns | None

    @classmethod
    def of(cls, matcher: Matcher) -> _Compiled:
        root = os.path.abspath(matcher.root)
        exclude = tuple(os.path.abspath(p) for p in matcher.exclude)
        never = re.compile("(?!)")  # no pattern: matches nothing
        return cls(
            root.rstrip("/") + "/", exclude, _one(JUNK_NAMES) or never, _one(JUNK_DIRS) or never,
            _Patterns.of(matcher.ignore), _Patterns.of(matcher.patterns),
        )  # fmt: skip


@functools.cache  # a Matcher is made per check in places (WatchKind.wants); translating is the dear part
def _one(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One expression that matches what any of the shell patterns matches (`fnmatchcase` each)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def _any(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)
