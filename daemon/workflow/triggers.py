"""Trigger specs as workflow files declare them, and the `trigger:` mapping's model.

`trigger:` holds exactly one registered trigger kind's key; each kind has its own model, built once,
so errors are reported at their key (`trigger.watch.path`).
"""

from __future__ import annotations

import difflib
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, create_model, field_validator, model_validator

from daemon.durations import parse_duration
from daemon.schedule.cron import CronError, wall_triggers
from daemon.words import count
from daemon.workflow.fields import CRON_FIELD, Duration, ExpandedPath, Patterns, StrictModel, problem

if TYPE_CHECKING:
    from daemon.triggers import TriggerKind


class WatchTrigger(StrictModel):
    """Run the workflow on each file that appears (or changes) in a folder."""

    path: ExpandedPath
    patterns: Patterns = []
    ignore: Patterns = []
    recursive: bool = False
    depth: int | None = Field(None, ge=0)
    settle_seconds: float = Field(2.0, ge=0)
    poll: bool = False
    poll_interval: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _depth_needs_recursive(self) -> WatchTrigger:
        if self.depth is not None and not self.recursive:
            raise problem("depth", "depth only applies with recursive: true", ("depth",))
        return self


class ScheduleTrigger(StrictModel):
    """Run the workflow on a cron expression or at a fixed interval."""

    cron: str | None = None
    every: Duration | None = None
    timezone: str | None = None
    catch_up: bool = True
    overlap: Literal["skip", "queue"] = "skip"

    @field_validator("cron")
    @classmethod
    def _cron_shape(cls, value: str | None) -> str | None:
        if value is None:
            return value
        fields = value.split()
        if len(fields) not in (5, 6):
            raise problem(
                "cron", "'{cron}' has {fields}; a cron expression has 5 (minute hour day month "
                "weekday) or 6 with seconds first", cron=value, fields=count(len(fields), "field"),
            )  # fmt: skip
        for field in fields:
            if not CRON_FIELD.match(field):
                raise problem("cron", "the cron field '{field}' has characters cron does not use",
                              field=field)  # fmt: skip
        try:
            wall_triggers(" ".join(fields))
        except CronError as exc:
            raise problem("cron", "{reason}", reason=exc.message) from None
        return " ".join(fields)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise problem("timezone", "unknown time zone '{zone}'; use a name such as Europe/Berlin",
                          zone=value) from None  # fmt: skip
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleTrigger:
        if (self.cron is None) == (self.every is None):
            raise problem("schedule", "a schedule needs exactly one of cron or every")
        return self

    @property
    def interval(self) -> timedelta | None:
        """The `every` duration, or None for a cron schedule."""
        return None if self.every is None else parse_duration(self.every)


class Trigger(StrictModel):
    """What starts a workflow's runs: use `kind` and `spec`; each registered kind has its own model."""

    trigger_kind: ClassVar[TriggerKind]
    spec: Any = None

    @property
    def kind(self) -> TriggerKind:
        """The registered trigger kind."""
        return self.trigger_kind

    def spec_of(self, name: str) -> Any:
        """The spec when this is a trigger of kind `name`, else None."""
        return self.spec if self.trigger_kind.name == name else None


@cache
def trigger_model(kind: TriggerKind) -> type[Trigger]:
    """The model of `{<kind.name>: kind.Spec}`, built once per registered kind."""
    model = create_model(f"{type(kind).__name__}Trigger", __base__=Trigger, spec=(kind.Spec, Field(alias=kind.name)))
    model.trigger_kind = kind
    return model


def validate_trigger(data: Any, info: ValidationInfo) -> Trigger:
    """The trigger a workflow file declares: a mapping with exactly one registered kind's key."""
    from daemon.plugins import registry

    if isinstance(data, Trigger):
        return data
    kinds = registry().triggers
    names = list(kinds)
    choices = " or ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " or " + names[-1]
    if not isinstance(data, dict):
        raise problem("trigger", "expected a mapping with one of {choices}", choices=choices)
    for key in data:
        if key not in kinds:
            near = difflib.get_close_matches(str(key), list(kinds), n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise problem("unknown_key", "unknown key '{key}'{hint}; allowed keys are {allowed}", (key,),
                          key=str(key), hint=hint, allowed=", ".join(kinds))  # fmt: skip
    if len(data) != 1:
        raise problem("trigger", "a trigger needs exactly one of {choices}", choices=choices)
    (name,) = data
    return trigger_model(kinds[name]).model_validate(data, context=info.context)
