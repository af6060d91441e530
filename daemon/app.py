"""Wiring: settings → database, workflows, model backend, workers and triggers."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from daemon.domain import Origin, Run, RunStatus
from daemon.engine.doorbell import Doorbell
from daemon.engine.intake import Intake
from daemon.engine.journal import Journal
from daemon.engine.pool import WorkerPool
from daemon.engine.progress import BacklogLog, Progress, ProgressMeter
from daemon.engine.resource_outage import StoreOutage
from daemon.engine.runner import Runner
from daemon.engine.shadow import ShadowLane
from daemon.engine.spares import Spares
from daemon.engine.takeover import new_owner
from daemon.errors import ModelError, StoreError, UsageError, WorkflowError
from daemon.health import Health, Watchdog
from daemon.lifecycle import FolderWatch, Lifecycle, keep_last_good
from daemon.llm.configured import build_router
from daemon.llm.router import Router
from daemon.llm.wire import prepare_tls_context
from daemon.nodes import Presence
from daemon.notify import Notifier
from daemon.plugins import registry
from daemon.retention import PRUNE_EVERY_SECONDS, prune_logged
from daemon.schedule.inputs import InputCollector
from daemon.settings import Settings
from daemon.store import RunStore
from daemon.store.db import make_engine
from daemon.store.migrate import upgrade
from daemon.triggers import TriggerServices, TriggerSource
from daemon.words import count
from daemon.workflow import Workflow, load_workflows

log = logging.getLogger("gristmill")

POLL = 0.05  # seconds between looks while draining the backlog for `run --once`
PROGRESS_EVERY = 0.25  # seconds between progress reports while draining it


def workers_for(slots: int) -> int:
    """Workers for `slots` model calls in flight: the slots, plus one per four of them (at least one).

    The extra workers file and record their runs while the others hold the model. One is enough
    for a few slots; with many, several runs finish at once and their filing must not leave a slot
    idle: two 4-slot hosts at 200 ms, interleaved on a loaded machine, kept 0.66-0.74 busy with 9
    workers and 0.80-0.91 with 10 (BENCHMARKS.md). They stand aside while the daemon is busy on its
    own (`engine/spares.py`).
    """
    return slots + max(1, -(-slots // 4))


@dataclass
class OnceReport:
    """What `run --once` did."""

    counts: dict[RunStatus, int]
    left_queued: int
    reason: str | None


class App:
    """One gristmill instance: the store, the loaded workflows and the machinery around them."""

    def __init__(self, settings: Settings, *, router: Router | None = None) -> None:
        self.settings = settings
        if router is None:
            prepare_tls_context()  # on a thread, beside the work below: the model clients take it
        self.engine = make_engine(settings.db_url, busy_timeout_ms=int(settings.database_timeout * 1000))
        upgrade(self.engine)
        self.store = RunStore(self.engine)
        self.workflows: dict[str, Workflow] = {}
        self.errors: list[WorkflowError] = []
        # Every configured server behind one router: the runner's backend and the pool's outage gate.
        self.router = self.backend = self.gate = router or build_router(settings)
        self.reload()
        self.store_outage = StoreOutage(cap=settings.backoff_max_seconds)  # the database, for intake and workers
        self.intake = Intake(
            self.store, max_attempts=settings.max_attempts, wake=self._wake, store_outage=self.store_outage
        )
        collector = InputCollector(self.store, max_chars=settings.max_chars, max_file_bytes=settings.max_file_bytes)
        self.journal = _journal(settings)
        # This process in `gristmill nodes`: the journal's owner (host, pid, random) owns its leases.
        self.node = Presence(self.engine, settings.role, self.journal.owner)
        self.runner = Runner(
            workflows=lambda: self.workflows, store=self.store, backend=self.backend, intake=self.intake,
            settings=settings, post=self._post, scheduled=collector.scope, journal=self.journal,
        )  # fmt: skip  # (keyword arguments read as one sentence)
        workers = workers_for(self.router.slots) if settings.role.works else 0  # an intake node: none
        self.pool = WorkerPool(
            self.store, self.runner, size=workers, gate=self.gate,
            workflows=lambda: self.workflows, lease_seconds=settings.lease_seconds,
            heartbeat_seconds=settings.heartbeat_seconds,
            backoff_max=settings.backoff_max_seconds, journal=self.journal, on_fatal=self._on_fatal,
            store_outage=self.store_outage, succeeded=lambda run: self.shadow.offer(run),
            on_heartbeat=self.node.beat,  # nodes: the node's heartbeat (an intake node's pool has only that)
            moved=self.runner.shared.moved,  # a file on_failure moves: other workflows taking it record so
            spares=Spares(max(0, workers - self.router.slots)),
        )  # fmt: skip  # (keyword arguments read as one sentence)
        # Shadow candidates are asked only in slots the runs leave free (daemon/engine/shadow.py).
        self.shadow = ShadowLane(
            self.store, self.router, lambda: self.workflows, slots=self.router.slots,
            busy=lambda: self.pool.in_flight,
        )  # fmt: skip  # (keyword arguments read as one sentence)
        self._life: Lifecycle | None = None
        services = TriggerServices(self.store, self.intake, settings, lambda: self.workflows)
        # One source of runs per trigger kind (folders, schedules, and what plugins add).
        self.sources: dict[str, TriggerSource] = {
            name: kind.source(services) for name, kind in registry().triggers.items()
        } if settings.role.takes_in else {}  # fmt: skip  # a worker node takes nothing in: it only executes runs
        self._webhooks: httpx.Client | None = None  # made at the first webhook (see _post)
        self._webhook_lock = threading.Lock()
        self.web: Any = None  # the dashboard, while serving
        self.health: Health | None = None

    def reload(self) -> None:
        """Load the workflows folder; a broken file is logged and left out, or keeps its last good version."""
        loaded, self.errors = load_workflows(self.settings.workflows, servers=self.router.by_name)
        for error in self.errors:
            log.error("%s", error)
        self.workflows = {**keep_last_good(self.workflows, loaded, self.errors), **loaded}

    def reload_live(self) -> None:
        """Reload while serving: each trigger source follows the changes of its workflows."""
        self.reload()
        self._configure_sources()
        self.pool.wake_all()
        log.info("workflows reloaded: %s", ", ".join(sorted(self.workflows)) or "none")

    def _configure_sources(self) -> None:
        for name, source in self.sources.items():
            source.configure([w for w in self.workflows.values() if w.trigger.kind.name == name])

    def trigger(self, name: str, file: Path | None, *, dry_run: bool = False) -> Run:
        """Run a workflow now, on this thread, and return the run as recorded."""
        workflow = self.workflows.get(name)
        if workflow is None:
            raise UsageError(f"no workflow named '{name}' is loaded; list them with: gristmill workflows")
        if workflow.takes_file:
            if file is None:
                raise UsageError(f"workflow '{name}' works on files; give one: gristmill trigger {name} FILE")
            run, _ = self.intake.file(workflow, file, trigger=Origin.MANUAL, dry_run=dry_run)
        else:
            run, _ = self.intake.tick(workflow, None, dry_run=dry_run)
        self.pool.execute_now(run.id)
        return self.store.get(run.id)

    def _wake(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.wake()

    def _post(self, url: str, body: dict[str, Any]) -> None:
        with self._webhook_lock:  # one pooled client: keep-alive connections to the receivers, per thread
            if self._webhooks is None:
                self._webhooks = httpx.Client(timeout=self.settings.connect_timeout * 2)
        try:
            self._webhooks.post(url, json=body).raise_for_status()
        except httpx.HTTPError as exc:
            raise ModelError(f"the webhook {url} failed: {exc}") from exc

    # -- modes ------------------------------------------------------------------------------
    def _on_fatal(self, exc: StoreError) -> None:
        """The database is gone for good (the pool said so once): the daemon stops."""
        if self._life is not None:
            self._life.request_stop()

    def _take_back(self) -> None:
        """Runs of processes that died (at once on this machine), or whose lease lapsed, back to the queue."""
        taken = self.pool.takeover.sweep()
        if taken:
            log.info("returned %d interrupted runs to the queue: %s", len(taken), ", ".join(map(str, taken)))

    def run_once(self, progress: Callable[[Progress], None] = lambda p: None) -> OnceReport:
        """Queue what is in the watched folders, process everything due, and return; `progress` hears how far."""
        self._take_back()
        self.node.register()
        prune_logged(self.store, self.workflows.values(), datetime.now(UTC))
        meter = ProgressMeter(self.store)
        self._configure_sources()
        for source in self.sources.values():
            source.catch_up()  # what waits in folders; due ticks as one run each, missed ones per catch_up
        self.pool.start()
        try:
            told = 0.0
            while not self._drained():
                if time.monotonic() - told >= PROGRESS_EVERY:
                    with contextlib.suppress(StoreError):  # the database away: the workers wait, so does this
                        progress(meter.read())
                    told = time.monotonic()
                time.sleep(POLL)
        finally:
            self.pool.stop(self.settings.stop_timeout)
            self.node.stopped()
        if self.pool.fatal is not None:
            raise self.pool.fatal
        unasked = self.shadow.drain()  # idle now: every slot is spare for the shadow candidates
        if unasked:
            log.info("shadow mode left %d runs unasked (the model server is busy or away)", unasked)
        last = meter.read(final=True)
        progress(last)
        return OnceReport(dict(last.ended), last.queued, self.gate.reason)

    def _drained(self) -> bool:
        if self.pool.fatal is not None or (self.gate.is_down and self.pool.in_flight == 0):
            return True
        if not self.pool.is_idle():
            return False
        due = self.store.next_due()
        # Idle with a server away: what is left waits for it (runs for the servers that are up were taken).
        waiting = due is not None and self.router.partly_down
        return due is None or waiting or (due - datetime.now(UTC)).total_seconds() > self.settings.backoff_max_seconds

    def serve(self, life: Lifecycle) -> None:
        """The daemon: recover, watch and work until asked to stop; reload workflows on edits and SIGHUP."""
        notifier = Notifier(self.settings.notify_socket)
        if self.settings.http_address is not None:  # the dashboard's modules only when it is on
            from daemon.web.server import start_dashboard  # the web stack itself loads on its own thread

            self.web = start_dashboard(self)  # before the workers, so the metrics count every run
        self._life = life
        self._take_back()
        self.node.register()
        wakeups = self.store.wakeups(self.pool.wake)  # PostgreSQL: runs queued by other nodes wake ours
        self._configure_sources()
        for source in self.sources.values():
            source.start()  # observers, timers; a schedule records its missed ticks (catch_up) here
        folder = FolderWatch(self.settings.workflows, life.request_reload)
        folder.start()
        doorbell = Doorbell(self.settings.data_dir, self.pool.wake_all)  # `gristmill retry` rings it
        doorbell.start()
        self.pool.start()  # the backlog is worked on while the scan is still streaming it in
        self.shadow.start()
        # Migrated and watching: ready for systemd, before a long scan can outlast its start timeout.
        notifier.ready("scanning the watched folders")
        # What arrived while the daemon was down, on a thread of its own: a backlog is queued as the
        # workers take it (hours for a large one), while this thread feeds systemd's watchdog.
        scanning = threading.Thread(target=self._scan_at_start, args=(life,), name="start-up scan", daemon=True)
        scanning.start()
        servers = ", ".join(f"{u.name} {u.config.url} ({count(u.slots, 'slot')})" for u in self.router.upstreams)
        log.info("gristmill ready as node %s (role %s): %s, scanning the watched folders, model servers: %s",
                 self.node.id, self.settings.role.value, count(len(self.workflows), "workflow"),
                 servers)  # fmt: skip
        # What start-up made (modules, settings, workflows) lives as long as the daemon: out of the
        # collector's sight, so its full collections walk only what runs make.
        gc.freeze()
        if self.web is not None:
            self.web.begin()  # the page's own imports wait until the daemon is ready
        self._serve_loop(life, self._watchdog(notifier, folder))
        notifier.stopping(f"stopping: waiting up to {self.settings.stop_timeout:.0f}s for running runs")
        folder.stop()
        doorbell.stop()
        self._stop_serving(life)
        scanning.join(timeout=5)  # the sources' stop ended its wait: it returns within a batch
        wakeups.close()
        self.node.stopped()
        if self.pool.fatal is not None:
            raise self.pool.fatal  # one sentence from the command, exit code 1

    def _scan_at_start(self, life: Lifecycle) -> None:
        """Queue what is in the watched folders at start (see `serve`); say how many files it found."""
        try:
            found = sum(source.scan() for source in self.sources.values())
        except Exception:  # a bug must not end the daemon: the periodic rescan finds what is left
            log.exception("the start-up scan of the watched folders failed")
            return
        if not life.stopping:
            log.info("start-up scan done: %s found at start", count(found, "file"))

    def _serve_loop(self, life: Lifecycle, dog: Watchdog) -> None:
        # Runs older than their workflow's retention are forgotten at start and every few hours.
        prune_logged(self.store, self.workflows.values(), datetime.now(UTC))
        next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        backlog = BacklogLog(self.store, self.settings.progress_seconds)
        while not life.stopping:
            dog.tick()
            self.pool.supervise()
            backlog.tick()
            life.wait(min(dog.due_in(), backlog.due_in(), max(0.0, next_prune - time.monotonic())))
            if life.take_reload() and not life.stopping:
                self.reload_live()
            if time.monotonic() >= next_prune:
                prune_logged(self.store, self.workflows.values(), datetime.now(UTC))
                next_prune = time.monotonic() + PRUNE_EVERY_SECONDS

    def _stop_serving(self, life: Lifecycle) -> None:
        log.info("stopping: no new runs; waiting up to %.0fs for running ones", self.settings.stop_timeout)
        for source in self.sources.values():
            source.stop()
        self.shadow.stop()
        left = self.pool.stop(self.settings.stop_timeout, abort=lambda: life.aborted)
        why = "stopped at once (a second signal)" if life.aborted else "stopped before this run finished"
        try:
            for run_id in left:
                error = f"the daemon {why}; queued again"
                self.store.release(run_id, self.pool.owner, not_before=None, error=error, refund_attempt=True)
        except StoreError as exc:  # they come back by the lease (or at once at the next start here)
            log.warning("could not return the running runs to the queue (%s); the next start takes them back", exc)
        else:
            if left:
                log.info("returned %d running runs to the queue: %s", len(left), ", ".join(map(str, left)))
        if self.web is not None:
            self.web.stop()
        log.info("stopped")

    def _watchdog(self, notifier: Notifier, folder: FolderWatch) -> Watchdog:
        pid = self.settings.watchdog_pid
        usec = self.settings.watchdog_usec if pid is None or pid == os.getpid() else None
        checks = {f"{name} trigger": source.alive for name, source in self.sources.items()}
        checks |= {
            "workflow folder watch": folder.alive,
            "workers": self.pool.alive,
            "database": self._database_answers,
        }
        self.health = Health(checks)  # also what the dashboard's /healthz asks
        return Watchdog(notifier, self.health, usec=usec, status=self._status, every=self.settings.heartbeat_seconds)

    def _database_answers(self) -> bool:
        self.store.get_meta("health")  # raises StoreError when the database cannot be read
        return True

    def _status(self) -> str:
        counts = self.store.in_queue()  # every heartbeat: never a count of the whole history
        away = [u.name for u in self.router.upstreams if u.gate.is_down]
        noun = "model server" if len(self.router.upstreams) == 1 else "model servers"
        model = f"{noun} away: {', '.join(away)}" if away else f"{noun} up"
        return (f"{counts[RunStatus.RUNNING]} running, {counts[RunStatus.QUEUED]} queued, "
                f"{len(self.workflows)} workflows; {model}")  # fmt: skip

    def close(self) -> None:
        if self._webhooks is not None:
            self._webhooks.close()
        self.router.close()
        self.journal.close()
        self.engine.dispose()


def _journal(settings: Settings) -> Journal:
    """This process's crash journal, in the data dir (none when it cannot be written: crashes then count)."""
    try:
        return Journal(settings.data_dir / "journal", new_owner())
    except OSError as exc:
        log.warning(
            "no crash journal in %s (%s): a crash during any run counts against its attempts", settings.data_dir, exc
        )
        return Journal(None, new_owner())
