"""The state of one run while the runner works through its steps. Only the runner changes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.domain import Run
from daemon.steps import StepResult
from daemon.workflow import Step, Workflow

SPLIT_KEY = "_split"  # outputs key: {step id: how its input was split}; step ids never start with "_"
INPUT_KEY = "_input"  # outputs key: how much of a long input was read ({truncated, chars, kept})


@dataclass
class RunContext:
    """One run in progress: its input, what templates see, and the outputs so far."""

    run: Run
    workflow: Workflow
    dry_run: bool
    scope: dict[str, Any]  # what templates see: file, run, now, items, and each finished step's output
    text: str | None = None  # the document the model reads
    images: tuple[bytes, ...] = ()
    file_path: Path | None = None  # where the run's file is now (a route may move it)
    outputs: dict[str, Any] = field(default_factory=dict)  # step id → output, earlier attempts included
    finished_intents: dict[str, dict[str, Any]] = field(default_factory=dict)  # of an earlier attempt
    unsaved: bool = False  # outputs changed since they were last stored

    def note_input(self, read: dict[str, Any]) -> None:
        """How the input was read (scanned pages and the model that read them), for the record."""
        if read:
            self.outputs[INPUT_KEY] = {**self.outputs.get(INPUT_KEY, {}), **read}
            self.unsaved = True

    def note_cut(self, chars: int) -> None:
        """The input had `chars` characters (at least) and the model reads only `self.text` of them."""
        self.note_input({"truncated": True, "chars": chars, "kept": len(self.text or "")})

    def done(self, step: Step) -> bool:
        """Whether the step already has an output (from this attempt or an earlier one)."""
        return step.step_id in self.outputs

    def record(self, step: Step, result: StepResult) -> None:
        """Keep a step's result: its output, how its input was split, where the file is now."""
        self.outputs[step.step_id] = result.output
        if result.split:
            self.outputs[SPLIT_KEY] = {**self.outputs.get(SPLIT_KEY, {}), step.step_id: result.split}
        if result.moved_to is not None:
            self.file_path = result.moved_to
        self.unsaved = True

    def expose(self, step: Step) -> None:
        """Let later steps and templates see the step's output under its id."""
        self.scope[step.step_id] = self.outputs[step.step_id]
