"""Mailboxes as a trigger: watching an IMAP folder, and the route actions on the messages it found."""

from daemon.mail.actions import ActionOutcome, MailActionResult, flag, keep, move_to_folder
from daemon.mail.connection import MailboxInfo, check_mailbox, mailbox, open_mailbox
from daemon.mail.cursor import Cursor, CursorStore, FileCursor, MemoryCursor
from daemon.mail.keys import MessageKey
from daemon.mail.reader import Refuse, Submit
from daemon.mail.spec import FolderName, MailboxSpec, MailFlag, imap_flag
from daemon.mail.watcher import MailboxWatcher, WatcherStatus, WatchState

__all__ = [
    "ActionOutcome", "Cursor", "CursorStore", "FileCursor", "FolderName", "MailActionResult", "MailFlag",
    "MailboxInfo", "MailboxSpec", "MailboxWatcher", "MemoryCursor", "MessageKey", "Refuse", "Submit",
    "WatchState", "WatcherStatus", "check_mailbox", "flag", "imap_flag", "keep", "mailbox", "move_to_folder",
    "open_mailbox",
]  # fmt: skip
