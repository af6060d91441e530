"""APScheduler 3.11 as the alarm clock: it wakes at each tick; TickFirer decides and only enqueues.

Jobs live in a memory job store (schedules come from files); the run history and the last tick
handled live in our database. APScheduler's defaults are set on purpose: any lateness is
accepted (the firer decides what counts as missed), late wake-ups coalesce into one, and one
wake-up per workflow at a time.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from daemon.errors import GristmillError
from daemon.schedule.firing import TickFirer, schedule_ticks, ticks_of
from daemon.schedule.ticks import zone_of
from daemon.triggers.base import TriggerKind, TriggerServices, TriggerSource
from daemon.workflow import ScheduleTrigger, Workflow

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger("gristmill")


class Scheduler(TriggerSource):
    """Fires each scheduled workflow's ticks while the daemon runs."""

    def __init__(self, firer: TickFirer) -> None:
        self.firer = firer
        self._workflows: dict[str, Workflow] = {}
        self._aps: BackgroundScheduler | None = None
        self._started = False

    def fire_all(self, *, coalesce: bool = False) -> int:
        """Record every due or missed tick of every scheduled workflow now; runs created."""
        return sum(len(self._fire(name, coalesce=coalesce)) for name in list(self._workflows))

    def catch_up(self) -> None:
        """`run --once`: the due ticks of each workflow as one run each; missed ones per catch_up."""
        self.fire_all(coalesce=True)

    def start(self) -> None:
        """Catch up, then wake at every tick until `stop`."""
        self.fire_all()
        self._started = True
        self._add_jobs()

    def configure(self, workflows: list[Workflow]) -> None:
        """One job per scheduled workflow; called again after the workflows were reloaded."""
        self._workflows = {w.name: w for w in workflows if w.trigger.spec_of("schedule") is not None}
        self._add_jobs()

    def _add_jobs(self) -> None:
        if not self._started or (self._aps is None and not self._workflows):
            return  # APScheduler is imported and started with the first scheduled workflow (start-up time)
        from daemon.schedule.alarm import TickTrigger, alarm_clock

        starting = self._aps is None
        if self._aps is None:
            self._aps = alarm_clock()
        for job in self._aps.get_jobs():
            if job.id not in self._workflows:
                job.remove()
        for name, workflow in self._workflows.items():
            trigger = TickTrigger(schedule_ticks(workflow))
            self._aps.add_job(self._fire, trigger, args=[name], id=name, name=name, replace_existing=True)
        if starting:
            self._aps.start()

    def alive(self) -> bool:
        """False only when started and APScheduler's thread is gone."""
        return self._aps is None or bool(self._aps.running)

    def stop(self) -> None:
        """Stop waking up; a tick being recorded finishes first."""
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=True)
        self._aps, self._started = None, False

    def _fire(self, name: str, *, coalesce: bool = False) -> list:
        workflow = self._workflows.get(name)
        if workflow is None:
            return []
        try:
            return self.firer.fire(workflow, coalesce=coalesce)
        except GristmillError as exc:
            log.error("the tick of %s was not recorded: %s", name, exc)
            return []


class ScheduleKind(TriggerKind):
    """`trigger: {schedule: {cron: "0 7 * * *"}}` or `{every: 30m}`: one run per tick, exactly once."""

    name = "schedule"
    Spec = ScheduleTrigger
    takes_file = False
    takes_input = True

    def source(self, services: TriggerServices) -> Scheduler:
        grace = timedelta(seconds=services.settings.schedule_grace_seconds)
        return Scheduler(TickFirer(services.store, services.intake, grace=grace))

    def describe(self, spec: ScheduleTrigger) -> str:
        when = f"cron {spec.cron}" if spec.cron else f"every {spec.every}"
        return f"{when} ({spec.timezone or 'local time'})"

    def next_fire(self, spec: ScheduleTrigger, now: datetime) -> datetime | None:
        return ticks_of(spec).next_after(now).astimezone(zone_of(spec.timezone))
