"""Turning due ticks into recorded runs: exactly one run per tick, catch-up, no overlap.

The last tick handled per workflow is kept in the `meta` table; each tick's run carries the tick's
identity as its dedupe key, so a restart or a second process cannot run the same tick again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from daemon.domain import NewRun, Origin, Run
from daemon.engine.intake import Intake
from daemon.schedule.ticks import MAX_COUNT, Ticks, tick_key, ticks_for, zone_of
from daemon.store import RunStore
from daemon.workflow import ScheduleTrigger, Workflow

log = logging.getLogger("gristmill")

META_KEY = "schedule.{name}.last_tick"


def schedule_ticks(workflow: Workflow) -> Ticks:
    """The ticks of a scheduled workflow, in its time zone."""
    return ticks_of(workflow.trigger.spec)


def ticks_of(spec: ScheduleTrigger) -> Ticks:
    """The ticks of a schedule spec, in its time zone."""
    return ticks_for(spec.cron, spec.interval, zone_of(spec.timezone))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Due:
    """The ticks of one workflow that are due now: on time, and missed (too late to count as on time)."""

    on_time: list[datetime]
    missed_count: int  # MAX_COUNT means "at least"
    missed_first: datetime | None
    missed_last: datetime | None
    coalesced: int = 0  # on-time ticks folded into the last one


def due_ticks(ticks: Ticks, since: datetime, now: datetime, grace: timedelta) -> Due:
    """The ticks in (since, now]; those older than `grace` are missed."""
    cutoff = max(since, now - grace)
    on_time = ticks.between(cutoff, now)
    last = ticks.latest_until(cutoff, since=since) if cutoff > since else None
    if last is None:
        return Due(on_time, 0, None, None)
    first = ticks.next_after(since)
    return Due(on_time, len(ticks.between(since, last, MAX_COUNT)), first, last)


class TickFirer:
    """Records the due ticks of scheduled workflows as runs (queued, or skipped with the reason)."""

    def __init__(
        self,
        store: RunStore,
        intake: Intake,
        *,
        grace: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.intake, self.grace, self.clock = store, intake, grace, clock

    def fire(self, workflow: Workflow, *, coalesce: bool = False) -> list[Run]:
        """Record every tick of `workflow` due since the last one handled; the runs created.

        `coalesce` (for `run --once`) makes the on-time ticks one run, the latest.
        """
        now = self.clock()
        key = META_KEY.format(name=workflow.name)
        seen = self.store.get_meta(key)
        if seen is None:  # first sight of this workflow: nothing was missed yet
            self.store.set_meta(key, _iso(now))
            return []
        due = due_ticks(schedule_ticks(workflow), datetime.fromisoformat(seen), now, self.grace)
        if coalesce and len(due.on_time) > 1:
            due = replace(due, on_time=due.on_time[-1:], coalesced=len(due.on_time) - 1)
        created: list[Run] = []
        note = _missed_note(due)
        if due.missed_last is not None and (not due.on_time or not _catches_up(workflow)):
            created += self._missed(workflow, due, note)
            note = {}
        for tick in due.on_time:  # with catch_up, the first on-time run also stands for the missed
            created += self._tick(workflow, tick, note)
            note = {}
        latest = due.on_time[-1] if due.on_time else due.missed_last
        if latest is not None:
            self.store.set_meta(key, _iso(latest))
        return created

    def _missed(self, workflow: Workflow, due: Due, note: dict) -> list[Run]:
        assert due.missed_last is not None
        if _catches_up(workflow):
            return self._tick(workflow, due.missed_last, note)
        many = "+" if due.missed_count >= MAX_COUNT else ""
        ticks, were = ("tick", "was") if due.missed_count == 1 else ("ticks", "were")
        reason = (
            f"{due.missed_count}{many} {ticks} from {_iso(due.missed_first or due.missed_last)} to "
            f"{_iso(due.missed_last)} {were} missed while the daemon was not running; catch_up is false"
        )
        run, created = self.store.enqueue_skipped(self._new(workflow, due.missed_last, note), reason)
        return [run] if created else []

    def _tick(self, workflow: Workflow, tick: datetime, note: dict) -> list[Run]:
        spec: ScheduleTrigger = workflow.trigger.spec
        new = self._new(workflow, tick, note)
        if self.store.known(workflow.name, tick_key(tick)) is not None:
            return []  # another process (or an earlier life of this one) recorded this tick
        active = self.store.active(workflow.name)
        if active is not None and spec.overlap == "skip":
            reason = f"run {active.id} of this workflow was still {active.status.value}; overlap: skip"
            run, created = self.store.enqueue_skipped(new, reason)
        else:
            run, created = self.intake.tick(workflow, new.dedupe_key, new.context)
        if created:
            log.info("tick %s of %s: run %d %s", new.context["tick"], workflow.name, run.id, run.status.value)
        return [run] if created else []

    def _new(self, workflow: Workflow, tick: datetime, note: dict) -> NewRun:
        return NewRun(
            workflow=workflow.name, trigger=Origin.SCHEDULE, dedupe_key=tick_key(tick),
            context={"tick": _iso(tick), **note}, max_attempts=self.intake.max_attempts,
        )  # fmt: skip


def _catches_up(workflow: Workflow) -> bool:
    return bool(workflow.trigger.spec.catch_up)


def _missed_note(due: Due) -> dict:
    """What a run records about the missed ticks it stands for."""
    if due.missed_last is None:
        return {"coalesced_ticks": due.coalesced} if due.coalesced else {}
    return {
        "missed_ticks": due.missed_count,
        "missed_from": _iso(due.missed_first or due.missed_last),
        "missed_to": _iso(due.missed_last),
    }
