"""The typed shape of a workflow file: triggers, inputs, the workflow and its cross-checks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from daemon.durations import parse_duration
from daemon.schedule.cron import CronError, wall_triggers
from daemon.workflow.fields import (
    CRON_FIELD,
    NAME_PATTERN,
    RESERVED_STEP_IDS,
    Duration,
    ExpandedPath,
    Patterns,
    Since,
    StrictModel,
    TemplateStr,
    Text,
    problem,
)
from daemon.workflow.steps import (
    ACTION_KEYS,
    EXTRACT_TYPES,
    KEEP,
    STEP_CLASSES,
    STEP_TAGS,
    Action,
    ActionKind,
    ClassifySpec,
    ClassifyStep,
    ExtractSpec,
    ExtractStep,
    PromptSpec,
    PromptStep,
    RouteSpec,
    RouteStep,
    Step,
    StepKind,
    SummariseSpec,
    SummariseStep,
    WriteSpec,
    WriteStep,
)

__all__ = [
    "ACTION_KEYS", "EXTRACT_TYPES", "KEEP", "OLLAMA_OPTIONS", "STEP_CLASSES", "STEP_TAGS", "Action",
    "ActionKind", "ClassifySpec", "ClassifyStep", "ExtractSpec", "ExtractStep", "FilesInput", "Input",
    "OnFailure", "PromptSpec", "PromptStep", "RouteSpec", "RouteStep", "RunsInput", "ScheduleTrigger",
    "Step", "StepKind", "SummariseSpec", "SummariseStep", "Trigger", "WatchTrigger", "Workflow",
    "WriteSpec", "WriteStep",
]  # fmt: skip

# ---------------------------------------------------------------- triggers and inputs


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
                "cron", "'{cron}' has {count} fields; a cron expression has 5 (minute hour day month "
                "weekday) or 6 with seconds first", cron=value, count=len(fields),
            )  # fmt: skip
        for field in fields:
            if not CRON_FIELD.match(field):
                raise problem("cron", "the cron field '{field}' has characters cron does not use",
                              field=field)  # fmt: skip
        try:
            wall_triggers(" ".join(fields))
        except CronError as exc:
            raise problem("cron", "{reason}", reason=exc.message)
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
                          zone=value)  # fmt: skip
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
    """What starts a run: a watched folder or a schedule."""

    watch: WatchTrigger | None = None
    schedule: ScheduleTrigger | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Trigger:
        if (self.watch is None) == (self.schedule is None):
            raise problem("trigger", "a trigger needs exactly one of watch or schedule")
        return self


class FilesInput(StrictModel):
    """A scheduled run reads the files changed in a folder since `since`."""

    path: ExpandedPath
    patterns: Patterns = []
    since: Since = "last_run"

    @property
    def since_delta(self) -> timedelta | None:
        """The `since` duration, or None for `last_run`."""
        return None if self.since == "last_run" else parse_duration(self.since)


class RunsInput(StrictModel):
    """A scheduled run reads the recorded outputs of another workflow's runs since `since`."""

    workflow: str
    since: Since = "last_run"

    @property
    def since_delta(self) -> timedelta | None:
        """The `since` duration, or None for `last_run`."""
        return None if self.since == "last_run" else parse_duration(self.since)


class Input(StrictModel):
    """What a scheduled run reads: files or other runs."""

    files: FilesInput | None = None
    runs: RunsInput | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Input:
        if (self.files is None) == (self.runs is None):
            raise problem("input", "an input needs exactly one of files or runs")
        return self



# ---------------------------------------------------------------- the workflow

_BOOL, _INT, _FLOAT, _STOP = "true or false", "a whole number", "a number", "text or a list of text"
OLLAMA_OPTIONS: dict[str, str] = {
    **dict.fromkeys(("numa", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mmap", "use_mlock",
                     "embedding_only", "penalize_newline"), _BOOL),
    **dict.fromkeys(("num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread", "num_keep", "seed",
                     "num_predict", "top_k", "repeat_last_n", "mirostat"), _INT),
    **dict.fromkeys(("temperature", "top_p", "min_p", "tfs_z", "typical_p", "repeat_penalty",
                     "presence_penalty", "frequency_penalty", "mirostat_tau", "mirostat_eta"), _FLOAT),
    "stop": _STOP,
}  # fmt: skip


def _option_ok(expected: str, value: Any) -> bool:
    if expected == _BOOL:
        return isinstance(value, bool)
    if expected == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == _FLOAT:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


class OnFailure(StrictModel):
    """Where a watched file goes when its run failed for good."""

    move_to: TemplateStr


class Workflow(StrictModel):
    """One workflow file: a trigger, an optional input and the steps that run on it."""

    name: str
    description: str = ""
    model: Text | None = None
    options: dict[str, Any] = {}
    trigger: Trigger
    input: Input | None = None
    steps: list[Step] = Field(min_length=1)
    on_failure: OnFailure | None = None
    record: Literal["full", "metadata"] = "full"
    retention: Duration | None = None
    # Webhooks beyond loopback and private networks are refused unless the workflow says so.
    allow_remote_webhooks: bool = False
    source: Path | None = Field(None, exclude=True)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not (1 <= len(value) <= 64 and NAME_PATTERN.match(value)):
            raise problem("name", "'{name}' is not a workflow name; use 1 to 64 lowercase letters, digits "
                          "and dashes, such as sort-inbox", name=value)  # fmt: skip
        return value

    @field_validator("options")
    @classmethod
    def _ollama_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, given in value.items():
            expected = OLLAMA_OPTIONS.get(key)
            if expected is None:
                raise problem("option", "'{key}' is not a model option; known options are {known}",
                              (key,), key=key, known=", ".join(sorted(OLLAMA_OPTIONS)))  # fmt: skip
            if not _option_ok(expected, given):
                raise problem("option", "the option '{key}' must be {expected}, not {given}",
                              (key,), key=key, expected=expected, given=repr(given))  # fmt: skip
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Workflow:
        _check_trigger_fit(self)
        _check_step_ids(self.steps)
        _check_routes(self.steps)
        return self

    @property
    def is_watch(self) -> bool:
        """True when a watched folder starts the runs."""
        return self.trigger.watch is not None

    @property
    def is_schedule(self) -> bool:
        """True when a schedule starts the runs."""
        return self.trigger.schedule is not None

    @property
    def step_ids(self) -> list[str]:
        """Each step's id, in order."""
        return [step.step_id for step in self.steps]

    @property
    def retention_delta(self) -> timedelta | None:
        """How long runs are kept, or None for ever."""
        return None if self.retention is None else parse_duration(self.retention)

    def step(self, step_id: str) -> Any:
        """The step with this id; KeyError when there is none."""
        for step in self.steps:
            if step.step_id == step_id:
                return step
        raise KeyError(f"workflow '{self.name}' has no step '{step_id}'")


def _check_trigger_fit(workflow: Workflow) -> None:
    if workflow.input is not None and not workflow.is_schedule:
        raise problem("input", "input only applies to a schedule trigger; a watched folder's input is "
                      "the file itself", ("input",))  # fmt: skip
    if workflow.on_failure is not None and not workflow.is_watch:
        raise problem("on_failure", "on_failure only applies to a watch trigger, whose files it moves",
                      ("on_failure",))  # fmt: skip


def _check_step_ids(steps: list[Any]) -> None:
    first: dict[str, int] = {}
    for i, step in enumerate(steps):
        at = ("steps", i, "id") if step.id else ("steps", i)
        sid = step.step_id
        if sid in RESERVED_STEP_IDS:
            raise problem("step_id", "the step id '{id}' is taken by the template variable of that name; "
                          "choose another", at, id=sid)  # fmt: skip
        if sid in first:
            hint = "give each step its own id" if step.id else f"give this {step.kind} step an id"
            raise problem("step_id", "the step id '{id}' is already used by steps[{first}]; {hint}",
                          at, id=sid, first=first[sid], hint=hint)  # fmt: skip
        first[sid] = i


def _check_routes(steps: list[Any]) -> None:
    earlier: dict[str, Any] = {}
    for i, step in enumerate(steps):
        if isinstance(step, RouteStep):
            _check_route(step.route, ("steps", i, "route"), earlier, [s.step_id for s in steps[i:]])
        earlier[step.step_id] = step


def _check_route(spec: RouteSpec, at: tuple[Any, ...], earlier: dict[str, Any], later: list[str]) -> None:
    if spec.by is None:
        if spec.routes or spec.review is not None:
            raise problem("route_by", "routes and review need by: the id of an earlier classify step",
                          at + ("by",))  # fmt: skip
        return
    source = earlier.get(spec.by)
    if source is None:
        why = "comes after this route" if spec.by in later else "does not exist"
        classify = [f"'{sid}'" for sid, s in earlier.items() if isinstance(s, ClassifyStep)]
        hint = f"such as {', '.join(classify)}" if classify else "and there is none yet"
        raise problem("route_by", "step '{by}' {why}; by names a classify step before this route, {hint}",
                      at + ("by",), by=spec.by, why=why, hint=hint)  # fmt: skip
    if not isinstance(source, ClassifyStep):
        raise problem("route_by", "step '{by}' is of kind {kind}; by names a classify step",
                      at + ("by",), by=spec.by, kind=str(source.kind))  # fmt: skip
    labels = source.classify.labels
    for label in spec.routes:
        if label not in labels:
            near = [known for known in labels if known.casefold() == label.strip().casefold()]
            hint = f"did you mean '{near[0]}'?" if near else f"the labels are {', '.join(labels)}"
            raise problem("route_label", "'{label}' is not a label of step '{by}'; {hint}",
                          at + ("routes", label), label=label, by=spec.by, hint=hint)  # fmt: skip
