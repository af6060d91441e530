"""Remembering which file versions were already handed to intake, so rescans do not hash them again."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

SUBMITTED_MAX = 100_000  # entries of ~300 bytes: ~30 MB at most, then the least recent are forgotten

# (inode, size, mtime_ns) of a regular file; a symlink is remembered as LINK.
Signature = tuple[int, int, int] | str
LINK = "symlink"


class Submitted:
    """A bounded, thread-safe map (workflow, path) → signature of the version last submitted.

    Forgetting an entry is harmless: the file is hashed again and the store's dedupe answers.
    """

    def __init__(self, limit: int = SUBMITTED_MAX) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, Signature] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def has(self, key: Hashable, signature: Signature) -> bool:
        """True when `key` was last submitted with exactly this signature."""
        with self._lock:
            if self._items.get(key) != signature:
                return False
            self._items.move_to_end(key)
            return True

    def add(self, key: Hashable, signature: Signature) -> None:
        """Remember that `key` was submitted at `signature`; forget the oldest beyond the limit."""
        with self._lock:
            self._items[key] = signature
            self._items.move_to_end(key)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
