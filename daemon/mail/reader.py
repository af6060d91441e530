"""Reading one selected folder: every message above the cursor goes to `submit`, oldest first, once.

The cursor moves past a message only once `submit` took it, so a crash, a dropped connection or a
store that cannot queue right now means the message is fetched again later, never skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Literal

from imapclient import IMAPClient

from daemon.mail.cursor import Cursor, CursorStore
from daemon.mail.keys import MessageKey, key_of

log = logging.getLogger("gristmill")

# Queue one message (its bytes, its key); True when it was queued or already has a run, False when not now.
Submit = Callable[[bytes, MessageKey], bool]
# Record that a message was not handed over (too large), with the reason in words.
Refuse = Callable[[MessageKey, str], None]

Existing = Literal["all", "unseen", "none"]
BATCH_BYTES = 8 * 1024 * 1024  # one FETCH brings several small messages, never more than this
BATCH_MESSAGES = 100
SIZE_CHUNK = 500  # UIDs per FETCH of sizes: a command line stays far below servers' limits (Dovecot: 64 kB)
_BODY, _HEADER, _SIZE = b"BODY[]", b"BODY[HEADER]", b"RFC822.SIZE"


def log_refusal(key: MessageKey, reason: str) -> None:
    """The default `Refuse`: one log line."""
    log.warning("message %s (UID %d) was not read: %s", key.message_id or key.sha256[:12], key.uid, reason)


class FolderReader:
    """Hands each message above the cursor in one folder to `submit` and moves the cursor past it."""

    def __init__(
        self,
        mailbox: str,
        folder: str,
        submit: Submit,
        cursor: CursorStore,
        *,
        max_bytes: int,
        refuse: Refuse = log_refusal,
        label: str = "",
        existing: Existing = "all",
    ) -> None:
        self.mailbox, self.folder, self.submit, self.cursor = mailbox, folder, submit, cursor
        self.max_bytes, self.refuse, self.label, self.existing = max_bytes, refuse, label or mailbox, existing
        self.uidvalidity = 0
        self.last_uid = 0
        self._holding = False  # while True, the cursor is not saved (a first start's pass is under way)
        self._first = False  # a first start's pass is still to be made (existing: none or unseen)

    def select(self, client: IMAPClient) -> None:
        """Select the folder read-only and pick up the saved cursor (a new connection)."""
        saved = self.cursor.load()
        if saved is not None and saved.mailbox == self.mailbox:
            self.uidvalidity, self.last_uid = saved.uidvalidity, saved.last_uid
        else:
            self.uidvalidity, self.last_uid = 0, 0
            self._first = self.existing != "all"
        self.refresh(client)

    def _first_start(self, client: IMAPClient) -> bool:
        """`existing: none` skips the messages already in the folder, `unseen` takes only the unread ones.

        The cursor is saved once, at the end: a pass cut short is made again in full (the store
        recognises what it already queued), so no message is skipped by mistake.
        """
        top = max(client.search(["ALL"]), default=0)
        if self.existing == "unseen":
            self._holding = True
            try:
                if not self._hand_over(client, sorted(client.search(["UNSEEN"]))):
                    return False
            finally:
                self._holding = False
        self._first = False
        self._advance(top)
        what = "unread messages taken, read ones left" if self.existing == "unseen" else "existing messages left"
        log.info("mailbox %s: first start, %s; new messages from UID %d on", self.label, what, top + 1)
        return True

    def refresh(self, client: IMAPClient) -> None:
        """Select the folder again; a new UIDVALIDITY (the folder was rebuilt) starts from the first UID.

        Selecting again, not STATUS: a server answers STATUS on the selected folder from its old view.
        """
        info = client.select_folder(self.folder, readonly=True)
        validity = int(info.get(b"UIDVALIDITY") or 0)
        if validity != self.uidvalidity:
            if self.uidvalidity:
                log.warning("mailbox %s: UIDVALIDITY changed (%d to %d), so every message is read again; those "
                            "already run are recognised and not run twice", self.label, self.uidvalidity,
                            validity)  # fmt: skip
            self.uidvalidity, self.last_uid = validity, 0

    def drain(self, client: IMAPClient) -> bool:
        """Hand over every message above the cursor; False when `submit` declined one (try again later)."""
        if self._first and not self._first_start(client):
            return False
        # "n:*" always names the highest UID, even below n: keep only those above the cursor.
        fresh = sorted(uid for uid in client.search(["UID", f"{self.last_uid + 1}:*"]) if uid > self.last_uid)
        return self._hand_over(client, fresh)

    def _hand_over(self, client: IMAPClient, fresh: list[int]) -> bool:
        for start in range(0, len(fresh), SIZE_CHUNK):
            chunk = fresh[start : start + SIZE_CHUNK]
            sizes = {uid: int(item.get(_SIZE, 0)) for uid, item in client.fetch(chunk, [_SIZE.decode()]).items()}
            for batch in _batches(chunk, sizes, self.max_bytes):
                if not self._hand_over_batch(client, batch, sizes):
                    return False
        return True

    def _hand_over_batch(self, client: IMAPClient, batch: list[int], sizes: dict[int, int]) -> bool:
        big = [uid for uid in batch if sizes.get(uid, 0) > self.max_bytes]
        bodies = client.fetch(batch, ["BODY.PEEK[]"]) if len(big) < len(batch) else {}
        heads = client.fetch(big, ["BODY.PEEK[HEADER]"]) if big else {}
        for uid in batch:
            if uid in heads:
                self._refuse_big(uid, heads[uid].get(_HEADER, b""), sizes[uid])
            elif bodies.get(uid, {}).get(_BODY) is not None and not self._offer(uid, bodies[uid][_BODY]):
                return False
            self._advance(uid)  # expunged since the size was read: nothing to hand over
        return True

    def _offer(self, uid: int, data: bytes) -> bool:
        key = key_of(self.mailbox, self.folder, self.uidvalidity, uid, data)
        try:
            taken = self.submit(data, key)
        except Exception:  # the caller's failure must not end the watcher; the message comes again
            log.exception("mailbox %s: queueing message UID %d failed; it is tried again", self.label, uid)
            return False
        if not taken:
            log.debug("mailbox %s: message UID %d not queued now; it is tried again", self.label, uid)
        return bool(taken)

    def _refuse_big(self, uid: int, header: bytes, size: int) -> None:
        key = replace(key_of(self.mailbox, self.folder, self.uidvalidity, uid, header), size=size)
        self.refuse(key, f"it is {size} bytes, over the limit of {self.max_bytes} (GRISTMILL_MAX_FILE_BYTES)")

    def _advance(self, uid: int) -> None:
        self.last_uid = max(self.last_uid, uid)
        if not self._holding:
            self.cursor.save(Cursor(self.mailbox, self.uidvalidity, self.last_uid))


def _batches(uids: list[int], sizes: dict[int, int], max_bytes: int) -> Iterator[list[int]]:
    """Consecutive groups of UIDs whose bodies together stay within BATCH_BYTES (oversized: headers only)."""
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0) if sizes.get(uid, 0) <= max_bytes else 0
        if batch and (total + size > BATCH_BYTES or len(batch) >= BATCH_MESSAGES):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch
