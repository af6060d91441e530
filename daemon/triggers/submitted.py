"""Remembering which file versions were already handed to intake, so rescans do not hash them again."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

SUBMITTED_MAX = 100_000  # entries of ~180 bytes: ~18 MB at most, then the least recent are forgotten

# (inode, size, mtime_ns) of a regular file; a symlink is remembered as LINK.
Signature = tuple[int, int, int] | str
LINK = "symlink"


class Submitted:
    """A bounded, thread-safe map (workflow, path) → signature of the version last submitted.

    Forgetting an entry is harmless: the file is hashed again and the store's dedupe answers.
    Keys and signatures are kept as their 64-bit `hash()`, not as the path and the tuple: 180 bytes
    an entry instead of 400, which was most of what a 100,000-file backlog grew the daemon by
    (BENCHMARKS.md). Two keys that collide would also need equal signatures (inode, size, mtime)
    to skip a file wrongly; at 2⁻⁶⁴ a pair, that is not a risk worth the 22 MB.
    """

    def __init__(self, limit: int = SUBMITTED_MAX) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._items: OrderedDict[int, int] = OrderedDict()  # hash(key) → hash(signature)

    def __len__(self) -> int:
        return len(self._items)

    def has(self, key: Hashable, signature: Signature) -> bool:
        """True when `key` was last submitted with exactly this signature."""
        key, signature = hash(key), hash(signature)
        with self._lock:
            if self._items.get(key) != signature:
                return False
            self._items.move_to_end(key)
            return True

    def add(self, key: Hashable, signature: Signature) -> None:
        """Remember that `key` was submitted at `signature`; forget the oldest beyond the limit."""
        key, signature = hash(key), hash(signature)
        with self._lock:
            self._items[key] = signature
            self._items.move_to_end(key)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
