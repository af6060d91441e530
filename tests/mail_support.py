"""Helpers for the mailbox tests: a recording `submit`, specs and watchers pointed at the test Dovecot."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from daemon.mail import FileCursor, MailboxSpec, MailboxWatcher, MemoryCursor, MessageKey
from daemon.mail.reader import FolderReader
from tests.dovecot import Dovecot

PASSWORD_ENV = "GM_TEST_MAIL_PASSWORD"


class Inbox:
    """A `submit` that records every call; `runs` keeps the first call per identity, as the run store's dedupe."""

    def __init__(self) -> None:
        self.calls: list[tuple[MessageKey, bytes]] = []
        self.runs: dict[str, MessageKey] = {}
        self.decline = 0  # answer False to this many calls first (the store cannot queue)
        self._lock = threading.Lock()

    def submit(self, data: bytes, key: MessageKey) -> bool:
        with self._lock:
            if self.decline:
                self.decline -= 1
                return False
            self.calls.append((key, data))
            self.runs.setdefault(key.identity, key)
            return True

    @property
    def identities(self) -> list[str]:
        with self._lock:
            return [key.identity for key, _ in self.calls]

    def count(self) -> int:
        with self._lock:
            return len(self.calls)


def spec_for(server: Dovecot, **overrides: Any) -> MailboxSpec:
    """Plain text on loopback unless told otherwise."""
    fields = {
        "host": "127.0.0.1",
        "port": server.imap_port,
        "tls": False,
        "user": server.user,
        "password_env": PASSWORD_ENV,
    }
    return MailboxSpec(**{**fields, **overrides})


def getenv_for(server: Dovecot):
    return {PASSWORD_ENV: server.password}.get


def make_watcher(server: Dovecot, inbox: Inbox, cursor_dir: Path, **options: Any) -> MailboxWatcher:
    """A quick-reacting watcher: short backoff and wake-ups, so tests take seconds, not minutes."""
    spec = options.pop("spec", None) or spec_for(server, **options.pop("spec_options", {}))
    settings = {"backoff_base": 0.05, "backoff_cap": 0.5, "wake_seconds": 0.1, "timeout": 10.0, "name": "mail-test"}
    return MailboxWatcher(
        spec, inbox.submit, cursor=FileCursor.in_data_dir(cursor_dir, "mail-test"), getenv=getenv_for(server),
        **{**settings, **options},
    )  # fmt: skip


def keys_in(server: Dovecot, folder: str = "INBOX") -> list[tuple[MessageKey, bytes]]:
    """The keys and bytes of a folder's messages, read the way the watcher reads them."""
    inbox = Inbox()
    spec = spec_for(server, folder=folder)
    reader = FolderReader(spec.url, folder, inbox.submit, MemoryCursor(), max_bytes=1 << 30)
    with server.client() as client:
        reader.select(client)
        reader.drain(client)
    return inbox.calls
