"""The route actions on a message: move it to a folder, flag it, keep it. gristmill deletes no mail otherwise.

Each action may run again after a crash (the action done on the server, the outcome not yet
recorded), so each first looks whether it is already done: the message is no longer under its UID
but sits in the target folder (found by Message-ID and size), or already carries the flag. The UID
is trusted only under the UIDVALIDITY it was read with; after a change the message is found by
Message-ID.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from imapclient import IMAPClient
from pydantic_core import PydanticCustomError

from daemon import failpoints
from daemon.errors import MailboxRefused, MailboxUnavailable
from daemon.mail.connection import CONNECTION_ERRORS, describe
from daemon.mail.keys import MessageKey, normalise_message_id
from daemon.mail.spec import imap_flag

DELETED = "\\Deleted"
_MID = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"


class ActionOutcome(StrEnum):
    DONE = "done"  # done now
    ALREADY = "already"  # found done: an earlier try did it before a crash
    GONE = "gone"  # the message is neither where it was nor where it was to go (someone moved it)


@dataclass(frozen=True)
class MailActionResult:
    """What a mail action did, for the run's record."""

    action: str  # move_to_folder, flag or keep
    outcome: ActionOutcome
    target: str | None  # the folder or the IMAP flag
    uid: int | None  # the message's UID in its folder when it was acted on


def keep(key: MessageKey) -> MailActionResult:
    """Leave the message as it is."""
    return MailActionResult("keep", ActionOutcome.DONE, None, key.uid)


def move_to_folder(client: IMAPClient, key: MessageKey, target: str) -> MailActionResult:
    """Move the message into `target` (created when missing): MOVE, else COPY + \\Deleted + UID EXPUNGE of it."""
    with _guard(key):
        if target == key.folder or target.upper() == key.folder.upper() == "INBOX":
            return MailActionResult("move_to_folder", ActionOutcome.ALREADY, target, key.uid)
        has_move = client.has_capability("MOVE")
        if not has_move and not client.has_capability("UIDPLUS"):
            raise MailboxRefused(
                f"the mail server of {key.mailbox} offers neither MOVE nor UIDPLUS, so a message cannot be "
                "moved without expunging others; use flag: or keep instead", key.mailbox,
            )  # fmt: skip
        _ensure_folder(client, target)
        already = key.message_id is not None and _find(client, target, key, readonly=True) is not None
        uid = _locate(client, key)
        if uid is None:
            outcome = ActionOutcome.ALREADY if already else ActionOutcome.GONE
        elif already and not has_move:  # copied before a crash, never removed: finish it, copy nothing twice
            _remove(client, uid)
            outcome = ActionOutcome.ALREADY
        elif has_move:
            client.move([uid], target)
            outcome = ActionOutcome.DONE
        else:
            client.copy([uid], target)
            failpoints.hit("mail_after_copy")
            _remove(client, uid)
            outcome = ActionOutcome.DONE
        return MailActionResult("move_to_folder", outcome, target, uid)


def flag(client: IMAPClient, key: MessageKey, name: str) -> MailActionResult:
    """Set a system flag (seen, answered, flagged, draft) or a keyword on the message; never \\Deleted."""
    try:
        wanted = imap_flag(name)
    except PydanticCustomError as exc:
        raise MailboxRefused(f"flag '{name}': {exc.message()}", key.mailbox) from exc
    with _guard(key):
        info = _select(client, key.folder, readonly=False)
        if not wanted.startswith("\\") and not _keywords_allowed(info, wanted):
            raise MailboxRefused(f"the folder {key.folder} of {key.mailbox} does not accept the keyword "
                                 f"{wanted}; use a system flag such as flagged", key.mailbox)  # fmt: skip
        uid = _locate(client, key, selected=info)
        if uid is None:
            return MailActionResult("flag", ActionOutcome.GONE, wanted, None)
        current = {f.decode(errors="replace").lower() for f in client.get_flags([uid]).get(uid, ())}
        if wanted.lower() in current:
            return MailActionResult("flag", ActionOutcome.ALREADY, wanted, uid)
        client.add_flags([uid], [wanted])
        return MailActionResult("flag", ActionOutcome.DONE, wanted, uid)


@contextlib.contextmanager
def _guard(key: MessageKey) -> Iterator[None]:
    """A connection that breaks mid-action is an outage: the action is tried again and finds what was done."""
    try:
        yield
    except CONNECTION_ERRORS as exc:
        raise MailboxUnavailable(f"mailbox {key.mailbox}: {describe(exc)}", key.mailbox) from exc


def _select(client: IMAPClient, folder: str, *, readonly: bool) -> dict[bytes, Any]:
    return client.select_folder(folder, readonly=readonly)


def _locate(client: IMAPClient, key: MessageKey, selected: dict[bytes, Any] | None = None) -> int | None:
    """Select the message's folder read-write; its UID there now, or None when it is gone."""
    info = selected or _select(client, key.folder, readonly=False)
    if int(info.get(b"UIDVALIDITY") or 0) == key.uidvalidity:
        return key.uid if client.search(["UID", str(key.uid)]) else None
    return _find_selected(client, key)


def _find(client: IMAPClient, folder: str, key: MessageKey, *, readonly: bool) -> int | None:
    _select(client, folder, readonly=readonly)
    return _find_selected(client, key)


def _find_selected(client: IMAPClient, key: MessageKey) -> int | None:
    """The UID of the message with the key's Message-ID and size in the selected folder, or None."""
    if key.message_id is None or not key.message_id.isascii():
        return None
    candidates = client.search(["HEADER", "Message-ID", key.message_id])
    if not candidates:
        return None
    found = client.fetch(candidates, ["RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    for uid in sorted(found):
        item = found[uid]
        header = item.get(_MID, b"").decode("ascii", "replace").split(":", 1)[-1]
        if normalise_message_id(header) == key.message_id and int(item.get(b"RFC822.SIZE", -1)) == key.size:
            return uid
    return None


def _remove(client: IMAPClient, uid: int) -> None:
    """Expunge this one message from the selected folder (UIDPLUS), never others marked \\Deleted."""
    client.add_flags([uid], [DELETED])
    client.uid_expunge([uid])


def _ensure_folder(client: IMAPClient, folder: str) -> None:
    if client.folder_exists(folder):
        return
    try:
        client.create_folder(folder)
    except IMAPClient.Error:
        if not client.folder_exists(folder):  # not a race with another node creating it: a real refusal
            raise
    with contextlib.suppress(IMAPClient.Error):
        client.subscribe_folder(folder)  # so that mail programs show it


def _keywords_allowed(info: dict[bytes, Any], keyword: str) -> bool:
    permanent = {f.decode(errors="replace").lower() for f in info.get(b"PERMANENTFLAGS", ())}
    return "\\*" in permanent or keyword.lower() in permanent
