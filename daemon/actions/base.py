"""The contract of a route action, and the `Action` a workflow file declares in a route.

An action is one key and its value (`move_to: ~/Documents/Invoices`, `run: other-workflow`,
`webhook: http://…`, `keep`); the registered `RouteAction` of that key validates the value and
carries it out. Actions are registered once (`daemon/plugins.py`), the built-ins like any plugin's.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, ValidationInfo, create_model

from daemon.workflow.fields import StrictModel, problem

if TYPE_CHECKING:
    from daemon.engine.effects import Effects
    from daemon.steps import KeyPath, StepContext
    from daemon.workflow import Workflow


@dataclass(frozen=True)
class ActionServices:
    """What route and write steps may touch; the runner builds one per step."""

    effects: Effects  # moves, copies and writes that never overwrite, with intents recorded first
    chain: Callable[[str, Path], int | None]  # queue another workflow on a file; the new run's id
    post: Callable[[str, dict[str, Any]], None]  # POST JSON to a declared, checked URL
    dry_run: bool
    local_networks: tuple[Any, ...] = ()  # ranges the user declared local (GRISTMILL_LOCAL_NETWORKS)


@dataclass(frozen=True)
class Done:
    """Where an action put things: the destination to record, and where the run's file is now."""

    destination: str | None
    moved_to: Path | None = None
    note: str | None = None  # what happened, when it was not the obvious (a message already moved, gone)


class RouteAction(ABC):
    """One kind of route action. Subclasses set `name` and `value` and implement `perform`."""

    name: ClassVar[str]  # the key in a route: `invoice: {move_to: ~/Invoices}`
    value: ClassVar[Any] = str  # the type (with validators) of the value in a workflow file
    needs_file: ClassVar[bool] = True  # makes no sense for a run without an input file
    into_folder: ClassVar[bool] = False  # the value is a folder template: rendered, confined, not watched
    moves_file: ClassVar[bool] = False  # takes the file away from where its trigger found it
    names_workflow: ClassVar[bool] = False  # the value is another workflow's name (checked at load)

    @abstractmethod
    def perform(self, target: Any, ctx: StepContext) -> Done:
        """Do the action with `target` (a folder already rendered and confined when `into_folder`)."""

    def check(self, workflow: Workflow, at: KeyPath) -> None:
        """Cross-check the action against its workflow (its trigger); raise `problem(...)` at key path `at`."""
        if self.needs_file and not workflow.takes_file:
            raise problem("action", "{name} works on the run's input file, and a {kind} trigger gives none",
                          at, name=self.name, kind=workflow.trigger.kind.name)  # fmt: skip


class Action(StrictModel):
    """One declared action. Use `kind` and `target`; each registered action has its own model."""

    action_kind: ClassVar[RouteAction]

    @property
    def kind(self) -> RouteAction:
        """The registered action that carries this one out."""
        return self.action_kind

    @property
    def name(self) -> str:
        """The action's key: move_to, copy_to, run, webhook, keep, …"""
        return self.action_kind.name

    @property
    def target(self) -> Any:
        """The declared value: a folder template, workflow name, URL, …; None for keep."""
        return None if self.action_kind.name == "keep" else self.value

    value: Any = None


@cache
def action_model(kind: RouteAction) -> type[Action]:
    """The model of `{<kind.name>: value}`, built once per registered action."""
    model = create_model(
        f"{type(kind).__name__}Declared",
        __base__=Action,
        value=(kind.value, Field(alias=kind.name)),
    )
    model.action_kind = kind
    return model


def make_action(name: str, value: Any) -> Action:
    """An action built in code (a default such as keep)."""
    from daemon.plugins import registry

    return action_model(registry().actions[name]).model_validate({name: value})


def validate_action(data: Any, info: ValidationInfo) -> Action:
    """The action a workflow file declares: exactly one registered key, or the bare word `keep`."""
    from daemon.plugins import registry

    if isinstance(data, Action):
        return data
    actions = registry().actions
    if data == "keep":
        data = {"keep": True}
    if isinstance(data, str):
        raise problem(
            "action", "'{word}' is not an action; write keep or a mapping such as {move_to: ~/Folder}", word=data
        )
    if not isinstance(data, dict):
        raise problem("action", "an action is keep or a mapping such as {move_to: ~/Folder}")
    names = ", ".join(actions)
    for key in data:
        if key not in actions:
            near = difflib.get_close_matches(str(key), list(actions), n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise problem(
                "unknown_key",
                "unknown key '{key}'{hint}; allowed keys are {allowed}",
                (key,),
                key=str(key),
                hint=hint,
                allowed=names,
            )
    if len(data) != 1:
        raise problem("action", "an action needs exactly one of {keys}, not {count}", keys=names, count=len(data))
    (name,) = data
    return action_model(actions[name]).model_validate(data, context=info.context)
