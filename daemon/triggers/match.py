"""Which files in a watched folder belong to a workflow: patterns, junk defaults, depth."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Files that are never documents: OS metadata, editor locks, partial downloads, sync tools' state.
JUNK_NAMES = (
    ".DS_Store", "._*", "Thumbs.db", "desktop.ini", ".~lock*", "~$*", "*.part", "*.crdownload",
    "*.swp", "*.swx", "*.tmp", "*.download", ".gristmill-tmp-*", ".*.sw?", "*~",
    ".syncthing.*", "~syncthing~*", ".stversions", ".stfolder",
)
# Folders whose content is never a document drop.
JUNK_DIRS = ("@eaDir", "#recycle", ".stversions", ".stfolder", "#snapshot", ".Trash-*", ".git")


@dataclass(frozen=True)
class Matcher:
    """Decides whether a path under `root` is a file the workflow wants."""

    root: Path
    patterns: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    recursive: bool = False
    depth: int | None = None
    # Where the workflow itself puts files inside its watch: never taken as new input.
    exclude: tuple[Path, ...] = ()

    def wants(self, path: Path) -> bool:
        """True when `path` is inside the watch, not junk, not ignored, and matches a pattern."""
        absolute = Path(os.path.abspath(path))
        try:
            relative = PurePosixPath(absolute.relative_to(self.root).as_posix())
        except ValueError:
            return False
        if self._excluded(absolute):
            return False
        folders = relative.parts[:-1]
        if folders and not self.recursive:
            return False
        if self.depth is not None and len(folders) > self.depth:
            return False
        if any(_any(part, JUNK_DIRS) for part in folders):
            return False
        if _any(relative.name, JUNK_NAMES):
            return False
        if self.ignore and _matches(relative, self.ignore):
            return False
        return not self.patterns or _matches(relative, self.patterns)

    def wants_dir(self, relative_parts: tuple[str, ...]) -> bool:
        """Whether a scan should descend into a subfolder at this relative path."""
        if not self.recursive or any(_any(p, JUNK_DIRS) for p in relative_parts):
            return False
        if self._excluded(self.root.joinpath(*relative_parts)):
            return False
        return self.depth is None or len(relative_parts) <= self.depth

    def _excluded(self, path: Path) -> bool:
        return any(path == out or out in path.parents for out in self.exclude)


def _any(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _matches(relative: PurePosixPath, patterns: tuple[str, ...]) -> bool:
    """A pattern without a slash matches the name at any depth; with one, the relative path.

    Case is ignored: `*.pdf` takes `SCAN.PDF` from a scanner.
    """
    text, name = relative.as_posix().lower(), relative.name.lower()
    for pattern in (p.lower() for p in patterns):
        if "/" in pattern:
            if fnmatch.fnmatchcase(text, pattern) or fnmatch.fnmatchcase(text, pattern.replace("**/", "")):
                return True
        elif fnmatch.fnmatchcase(name, pattern):
            return True
    return False
