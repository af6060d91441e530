"""How far a mailbox has been read: the last UID handed over, per UIDVALIDITY, kept in a small file.

The cursor only spares re-fetching what was already handed over; "never twice" is the run store's
word (keys by Message-ID and by UIDVALIDITY + UID). So a lost or stale cursor costs a re-read of the
folder, never a second run, and the file needs no database table.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from daemon.files.ops import fsync_dir

log = logging.getLogger("gristmill")


@dataclass(frozen=True)
class Cursor:
    """Every message of `mailbox` up to `last_uid` under `uidvalidity` was handed over."""

    mailbox: str  # MailboxSpec.url: another server, user or folder starts afresh
    uidvalidity: int
    last_uid: int


class CursorStore(Protocol):
    """Where a watcher keeps its cursor between connections and restarts."""

    def load(self) -> Cursor | None:
        """The saved cursor, or None when there is none (or it cannot be read)."""

    def save(self, cursor: Cursor) -> None:
        """Keep `cursor` durably; called after each message handed over."""


class MemoryCursor:
    """A cursor that lives as long as the process: for `check`, dry runs and tests of the store's dedupe."""

    def __init__(self, cursor: Cursor | None = None) -> None:
        self.cursor = cursor

    def load(self) -> Cursor | None:
        return self.cursor

    def save(self, cursor: Cursor) -> None:
        self.cursor = cursor


class FileCursor:
    """The cursor as a JSON file, replaced atomically (temporary file, fsync, rename, fsync of the folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_data_dir(cls, data_dir: Path, workflow: str) -> FileCursor:
        """The cursor of a workflow's mailbox: `<data dir>/mail/<workflow>.cursor.json`."""
        return cls(data_dir / "mail" / f"{workflow}.cursor.json")

    def load(self) -> Cursor | None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return Cursor(str(raw["mailbox"]), int(raw["uidvalidity"]), int(raw["last_uid"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("the mail cursor %s is unreadable (%s); the folder is read again, nothing runs twice",
                        self.path, exc)  # fmt: skip
            return None

    def save(self, cursor: Cursor) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(asdict(cursor), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
