"""The mailbox trigger's source of runs: one `MailboxWatcher` per mailbox workflow, each message queued once.

A message is stored in the inbound spool (`<data dir>/inbound/<workflow>/<sha256>.eml`) before its
run is queued, and the watcher moves its cursor only past a queued message, so a SIGKILL anywhere
loses nothing. "Once" has two keys: the run's dedupe key is the message's identity (its Message-ID,
else the hash of its bytes), unique in the store, which recognises a restart, a reconnection, a
rebuilt folder (new UIDVALIDITY) and a copy; and its place (UIDVALIDITY + UID as an IMAP URL), kept
in the run's context and looked up first, which recognises a message the server hands over with
other bytes (so another hash) at the same place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from daemon.domain import Origin, Run
from daemon.errors import GristmillError, MailboxError, StoreError
from daemon.inbound.spool import InboundSpool
from daemon.mail.connection import close, open_mailbox
from daemon.mail.context import CONTEXT_KEY, mail_context
from daemon.mail.cursor import FileCursor
from daemon.mail.keys import MessageKey
from daemon.mail.reader import FolderReader
from daemon.mail.spec import MailboxSpec
from daemon.mail.watcher import MailboxWatcher, WatcherStatus, WatchState
from daemon.settings import read_secret
from daemon.triggers.base import TriggerServices, TriggerSource
from daemon.workflow import Workflow

log = logging.getLogger("gristmill")

GetEnv = Callable[[str], "str | None"]


class MailQueue:
    """Queues the messages of mailbox workflows: spool first, then the run, once per message."""

    def __init__(self, services: TriggerServices) -> None:
        self.services = services
        self.spool = InboundSpool(services.settings.data_dir)

    def known(self, workflow: Workflow, key: MessageKey) -> Run | None:
        """The run this message already has in `workflow`: by what it is, else by where it is."""
        store = self.services.store
        return store.known(workflow.name, key.identity) or store.find_by_context(
            workflow.name, (CONTEXT_KEY, "url"), key.url
        )

    def submit(self, workflow: Workflow, data: bytes, key: MessageKey) -> bool:
        """Queue one message; True when it has a run now, False when the store cannot take it yet."""
        try:
            if self.known(workflow, key) is not None:
                return True
            spooled = self.spool.put(workflow.name, data, ".eml")
            run, created = self.services.intake.spooled(
                workflow, spooled, trigger=Origin.MAIL, dedupe_key=key.identity, context=mail_context(key, data)
            )
        except (StoreError, OSError) as exc:
            log.warning("mailbox of %s: message UID %d not queued yet: %s", workflow.name, key.uid, exc)
            return False
        if created:
            log.info("mailbox of %s: message UID %d queued as run %d", workflow.name, key.uid, run.id)
        return True

    def refuse(self, workflow: Workflow, key: MessageKey, reason: str) -> None:
        """Record a message that is not read (over the size limit) as a skipped run, once."""
        if self.known(workflow, key) is not None:
            return
        why = f"the message {key.message_id or f'UID {key.uid}'} was not read: {reason}"
        self.services.intake.skipped(
            workflow, trigger=Origin.MAIL, dedupe_key=key.identity, reason=why, context=mail_context(key)
        )


class MailboxSource(TriggerSource):
    """Watches every mailbox workflow's folder while the daemon runs; follows reloads."""

    def __init__(self, services: TriggerServices, *, getenv: GetEnv = read_secret, **watcher_options) -> None:
        self.services, self.getenv = services, getenv
        self.queue = MailQueue(services)
        settings = services.settings
        self.watcher_options = {"max_bytes": settings.max_file_bytes, "backoff_cap": settings.backoff_max_seconds,
                                **watcher_options}  # fmt: skip
        self._workflows: dict[str, Workflow] = {}
        self._watchers: dict[str, tuple[MailboxSpec, MailboxWatcher]] = {}
        self._idle: dict[str, str] = {}  # workflow → why it is not watched
        self._started = False

    def configure(self, workflows: list[Workflow]) -> None:
        self._workflows = {w.name: w for w in workflows if isinstance(w.trigger.spec, MailboxSpec)}
        if self._started:
            self._sync()

    def start(self) -> None:
        self._started = True
        self.queue.spool.sweep()
        self._sync()

    def catch_up(self) -> None:
        """`run --once`: read each mailbox once (what arrived since the cursor), without a watcher."""
        for name, workflow in sorted(self._workflows.items()):
            spec = self._ready(workflow)
            if spec is None:
                continue
            try:
                client = open_mailbox(spec, self.getenv, timeout=self.services.settings.connect_timeout * 6)
                try:
                    reader = self._reader(name, spec)
                    reader.select(client)
                    reader.drain(client)
                finally:
                    close(client)
            except (GristmillError, OSError) as exc:
                log.warning("mailbox of %s was not read: %s", name, exc)

    def alive(self) -> bool:
        return all(watcher.alive for _, watcher in self._watchers.values())

    def stop(self) -> None:
        self._started = False
        for name in list(self._watchers):
            self._unwatch(name)

    def status(self) -> dict[str, WatcherStatus]:
        """Each mailbox workflow's watcher state, for the health check and the dashboard."""
        found = {name: watcher.status for name, (_, watcher) in self._watchers.items()}
        for name, why in self._idle.items():
            found[name] = WatcherStatus(WatchState.STOPPED, None, 0, why)
        return found

    # ---------------------------------------------------------------- watchers

    def _sync(self) -> None:
        for name, (spec, _) in list(self._watchers.items()):
            current = self._workflows.get(name)
            if current is None or current.trigger.spec != spec:
                self._unwatch(name)
        self._idle = {name: why for name, why in self._idle.items() if name in self._workflows}
        for name, workflow in sorted(self._workflows.items()):
            if name not in self._watchers:
                self._watch(workflow)

    def _ready(self, workflow: Workflow) -> MailboxSpec | None:
        """The spec with host and user filled in, or None (said once) while a variable it needs is unset."""
        spec: MailboxSpec = workflow.trigger.spec
        missing = spec.missing(self.getenv)
        try:
            if missing:
                raise MailboxError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set; set "
                                   "it and restart gristmill")  # fmt: skip
            return spec.resolved(self.getenv)
        except MailboxError as exc:
            if self._idle.get(workflow.name) != exc.message:
                log.warning("the mailbox of %s is not watched: %s", workflow.name, exc.message)
            self._idle[workflow.name] = exc.message
            return None

    def _watch(self, workflow: Workflow) -> None:
        spec = self._ready(workflow)
        if spec is None:
            return
        self._idle.pop(workflow.name, None)
        watcher = MailboxWatcher(
            spec, partial(self._submit, workflow.name), cursor=self._cursor(workflow.name), getenv=self.getenv,
            name=workflow.name, refuse=partial(self._refuse, workflow.name), **self.watcher_options,
        )  # fmt: skip
        self._watchers[workflow.name] = (workflow.trigger.spec, watcher.start())

    def _unwatch(self, name: str) -> None:
        _, watcher = self._watchers.pop(name)
        watcher.stop()

    def _reader(self, name: str, spec: MailboxSpec) -> FolderReader:
        return FolderReader(
            spec.url, spec.folder, partial(self._submit, name), self._cursor(name),
            max_bytes=self.services.settings.max_file_bytes, refuse=partial(self._refuse, name), label=spec.label,
            existing=spec.existing,
        )  # fmt: skip

    def _cursor(self, name: str) -> FileCursor:
        return FileCursor.in_data_dir(self.services.settings.data_dir, name)

    def _submit(self, name: str, data: bytes, key: MessageKey) -> bool:
        workflow = self._workflows.get(name)
        return workflow is not None and self.queue.submit(workflow, data, key)

    def _refuse(self, name: str, key: MessageKey, reason: str) -> None:
        workflow = self._workflows.get(name)
        if workflow is not None:
            self.queue.refuse(workflow, key, reason)
