"""The typed shape of a workflow file: the workflow, its inputs and its cross-checks.

Steps and triggers are validated by their registered kinds (`daemon/plugins.py`); this module
knows no kind by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SerializeAsAny, WrapValidator, field_validator, model_validator

from daemon.durations import parse_duration
from daemon.workflow.fields import (
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
from daemon.workflow.steps import Step, validate_step
from daemon.workflow.triggers import Trigger, validate_trigger

if TYPE_CHECKING:
    from daemon.actions import Action
    from daemon.steps import KeyPath

DeclaredStep = Annotated[SerializeAsAny[Step], WrapValidator(lambda value, handler, info: validate_step(value, info))]
DeclaredTrigger = Annotated[
    SerializeAsAny[Trigger], WrapValidator(lambda value, handler, info: validate_trigger(value, info))
]

# ---------------------------------------------------------------- inputs


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


class Shadow(StrictModel):
    """A candidate model asked the model steps of each succeeded run as well, in spare slots, acting on nothing."""

    model: Text


def _shadows(value: Any) -> Any:
    """`shadow: {model: x}` is a list of one."""
    return [value] if isinstance(value, dict) else value


class OnFailure(StrictModel):
    """Where a watched file goes when its run failed for good."""

    move_to: TemplateStr


class Workflow(StrictModel):
    """One workflow file: a trigger, an optional input and the steps that run on it."""

    name: str
    description: str = ""
    model: Text | None = None
    vision_model: Text | None = None  # reads images and scanned pages; default: `model`, when it can see
    options: dict[str, Any] = {}
    trigger: DeclaredTrigger
    input: Input | None = None
    steps: list[DeclaredStep] = Field(min_length=1)
    on_failure: OnFailure | None = None
    shadow: Annotated[list[Shadow], BeforeValidator(_shadows)] = []
    record: Literal["full", "metadata"] = "full"
    retention: Duration | None = None
    # Webhooks beyond loopback and private networks are refused unless the workflow says so.
    allow_remote_webhooks: bool = False
    source: Path | None = Field(None, exclude=True)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not (1 <= len(value) <= 64 and NAME_PATTERN.match(value)):
            raise problem(
                "name",
                "'{name}' is not a workflow name; use 1 to 64 lowercase letters, digits and dashes, such as sort-inbox",
                name=value,
            )
        return value

    @field_validator("options")
    @classmethod
    def _ollama_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, given in value.items():
            expected = OLLAMA_OPTIONS.get(key)
            if expected is None:
                raise problem(
                    "option",
                    "'{key}' is not a model option; known options are {known}",
                    (key,),
                    key=key,
                    known=", ".join(sorted(OLLAMA_OPTIONS)),
                )
            if not _option_ok(expected, given):
                raise problem(
                    "option",
                    "the option '{key}' must be {expected}, not {given}",
                    (key,),
                    key=key,
                    expected=expected,
                    given=repr(given),
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Workflow:
        self.trigger.kind.check(self)
        _check_step_ids(self.steps)
        earlier: dict[str, Step] = {}
        for i, step in enumerate(self.steps):
            later = [s.step_id for s in self.steps[i:]]
            step.kind.check(step, ("steps", i, step.kind.name), earlier, later)
            earlier[step.step_id] = step
        return self

    @property
    def takes_file(self) -> bool:
        """True when each run works on an input file (a watched folder, a hook's body, a mail)."""
        return self.trigger.kind.takes_file

    @property
    def step_ids(self) -> list[str]:
        """Each step's id, in order."""
        return [step.step_id for step in self.steps]

    @property
    def retention_delta(self) -> timedelta | None:
        """How long runs are kept, or None for ever."""
        return None if self.retention is None else parse_duration(self.retention)

    def step(self, step_id: str) -> Step:
        """The step with this id; KeyError when there is none."""
        for step in self.steps:
            if step.step_id == step_id:
                return step
        raise KeyError(f"workflow '{self.name}' has no step '{step_id}'")

    def actions(self) -> Iterator[tuple[KeyPath, Action]]:
        """Every route action the steps declare, with its key path in the file."""
        for i, step in enumerate(self.steps):
            for key, action in step.kind.actions(step.spec):
                yield ("steps", i, step.kind.name, *key), action

    def destinations(self) -> list[str]:
        """Templates of the folders the workflow puts files into: routes, writes, on_failure."""
        found = [template for step in self.steps for template in step.kind.writes_into(step.spec)]
        if self.on_failure is not None:
            found.append(self.on_failure.move_to)
        return found

    @property
    def moves_files(self) -> bool:
        """Whether a run may take its file away from where the trigger found it (a move, on_failure)."""
        return self.on_failure is not None or any(action.kind.moves_file for _, action in self.actions())


def _check_step_ids(steps: list[Step]) -> None:
    first: dict[str, int] = {}
    for i, step in enumerate(steps):
        at = ("steps", i, "id") if step.id else ("steps", i)
        sid = step.step_id
        if sid in RESERVED_STEP_IDS:
            raise problem(
                "step_id",
                "the step id '{id}' is taken by the template variable of that name; choose another",
                at,
                id=sid,
            )
        if sid in first:
            hint = "give each step its own id" if step.id else f"give this {step.kind.name} step an id"
            raise problem(
                "step_id",
                "the step id '{id}' is already used by steps[{first}]; {hint}",
                at,
                id=sid,
                first=first[sid],
                hint=hint,
            )
        first[sid] = i
