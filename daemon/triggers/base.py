"""The contract of a trigger kind: its spec in a workflow file, and the source that queues its runs.

A trigger kind (watch, schedule, …) is registered once (`daemon/plugins.py`). While the daemon
runs, each kind has one `TriggerSource` for all workflows of that kind; the app configures, starts,
scans and stops the sources without knowing what they watch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from daemon.workflow.fields import StrictModel, problem

if TYPE_CHECKING:
    from daemon.engine.intake import Intake
    from daemon.settings import Settings
    from daemon.store import RunStore
    from daemon.workflow import Workflow


@dataclass(frozen=True)
class TriggerServices:
    """What a trigger source may use: the store, the intake that queues runs, the settings."""

    store: RunStore
    intake: Intake
    settings: Settings
    workflows: Callable[[], dict[str, Workflow]]  # the loaded workflows now (reloads replace them)


@dataclass(frozen=True)
class Reach:
    """The folder a trigger takes files from, and whether it takes them from its subfolders too."""

    folder: Path
    recursive: bool = False

    def overlaps(self, other: Reach) -> bool:
        """Whether a file could be taken by both triggers."""
        if self.folder == other.folder:
            return True
        return (self.recursive and self.folder in other.folder.parents) or (
            other.recursive and other.folder in self.folder.parents
        )


class Level(StrEnum):
    """How `gristmill check` reports a finding: fine, worth a look, the work would fail, or invalid."""

    OK = "ok"
    WARNING = "warning"
    FAILED = "failed"  # exit code 1, like an unreachable model server
    INVALID = "invalid"  # exit code 2, like a broken workflow file


@dataclass(frozen=True)
class Finding:
    """One line of `gristmill check` about a trigger: its level and a sentence."""

    level: Level
    message: str


@dataclass(frozen=True)
class WebMount:
    """Requests under `prefix` that a trigger source answers itself, on the dashboard's web server.

    `app` is an ASGI application that authenticates every request on its own (a hook's Bearer token),
    so the dashboard's guard (its token, session, CSRF token and Host check) does not apply to it.
    """

    prefix: str
    app: Callable[..., Awaitable[None]]


class TriggerSource(ABC):
    """Finds the inputs of one trigger kind's workflows and queues a run for each, once."""

    @abstractmethod
    def configure(self, workflows: list[Workflow]) -> None:
        """Take these workflows (all of this kind); while started, follow the changes at once."""

    @abstractmethod
    def start(self) -> None:
        """Begin listening (observers, timers, connections) on background threads."""

    def scan(self) -> int:
        """Queue what arrived while the daemon was down; how many runs were queued.

        It may take long (the watcher queues a backlog as the workers take it): the daemon calls it
        on a thread of its own, and `stop` ends it.
        """
        return 0

    def catch_up(self) -> None:
        """`run --once`: queue everything due now, without background threads, then return."""
        self.scan()

    def web_mount(self) -> WebMount | None:
        """What the source serves on the dashboard's web server (hooks), if anything; asked once it starts."""
        return None

    @abstractmethod
    def alive(self) -> bool:
        """Whether every thread and connection of the source still works (for the health check)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop listening; queued runs stay queued."""


class TriggerKind(ABC):
    """One kind of trigger. Subclasses set `name` and `Spec` and implement `source`."""

    name: ClassVar[str]  # the key under `trigger:` in a workflow file
    Spec: ClassVar[type[StrictModel]]
    takes_file: ClassVar[bool] = True  # each run works on an input file
    takes_input: ClassVar[bool] = False  # the workflow may declare `input:` (files or runs to read)
    moves_failed_files: ClassVar[bool] = False  # `on_failure: {move_to: …}` applies
    scope_names: ClassVar[frozenset[str]] = frozenset()  # template names `template_scope` adds (not step ids)

    @abstractmethod
    def source(self, services: TriggerServices) -> TriggerSource:
        """The daemon's source of runs for this kind's workflows."""

    def describe(self, spec: Any) -> str:
        """The trigger in a few words, for `gristmill workflows`."""
        return self.name

    def next_fire(self, spec: Any, now: datetime) -> datetime | None:
        """When the trigger fires next on its own (schedules); None when events decide."""
        return None

    def reach(self, spec: Any) -> Reach | None:
        """The folder this trigger takes files from (`check` warns when two workflows share one); None if none."""
        return None

    def wants(self, workflow: Workflow, path: Path) -> bool:
        """Whether this workflow's trigger would take the file at `path` (another workflow may move it away)."""
        return False

    def template_scope(self, context: Mapping[str, Any], file: Path | None) -> Mapping[str, Any]:
        """What templates of a run see besides file, run and now, from what the trigger recorded (`scope_names`)."""
        return {}

    def diagnose(self, workflows: list[Workflow]) -> list[Finding]:
        """`gristmill check` on this kind's workflows: secrets set, servers reachable, paths distinct."""
        return []

    def check(self, workflow: Workflow) -> None:
        """Cross-check the workflow for this trigger; raise `problem(...)` with a key path."""
        if workflow.input is not None and not self.takes_input:
            raise problem(
                "input",
                "input only applies to a schedule trigger; a watched folder's input is the file itself",
                ("input",),
            )
        if workflow.on_failure is not None and not self.moves_failed_files:
            raise problem(
                "on_failure", "on_failure only applies to a watch trigger, whose files it moves", ("on_failure",)
            )
        for i, step in enumerate(workflow.steps):
            if step.step_id in self.scope_names:
                raise problem("step_id", "the step id '{id}' is taken by the template variable of that name in a "
                              "{kind} workflow; choose another", ("steps", i, "id"), id=step.step_id,
                              kind=self.name)  # fmt: skip
        for at, action in workflow.actions():
            action.kind.check(workflow, (*at, action.name))
