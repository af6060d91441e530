"""The contract of a step kind: its spec, what it does with a run's context, and what it declares.

A step kind is one class: the spec model a workflow file fills in under the kind's key, `run`,
which turns a `StepContext` into a `StepResult`, the prompts it sends, and flags the runner reads.
Kinds are registered once (`daemon/plugins.py`); the built-ins in this package are registered
like any plugin's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from daemon.errors import GristmillError
from daemon.workflow.fields import StrictModel

if TYPE_CHECKING:
    from daemon.actions import Action, ActionServices
    from daemon.llm.ask import Asker
    from daemon.workflow import Step, Workflow

# Where a declared thing sits inside a step's spec, as key path below `steps[i].<kind>`.
KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class StepContext:
    """What one step may read and use. The runner builds it for each step; a step never changes it."""

    workflow: Workflow
    step_id: str
    scope: Mapping[str, Any]  # what templates see: file, run, now, items and earlier outputs by step id
    text: str | None  # the document the model reads; None when the run has no input
    images: tuple[bytes, ...]  # an image document (or scanned pages), for a vision model
    file_path: Path | None  # where the run's file is now
    # The model, for this step of this run (`ask`); made when the step first asks: most steps never do.
    asking: Callable[[], Asker]
    act: ActionServices  # side effects: moves, copies, writes (with intents), chained runs, webhooks
    # What the trigger recorded with the run (a mail's key, a hook's content type), read-only.
    trigger_context: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def ask(self) -> Asker:
        """The model, for this step of this run; every call is recorded."""
        return self.asking()

    def document(self) -> str:
        """The document's text; an image document has none (the model gets the image instead)."""
        if self.images:
            return ""
        if self.text is None:
            raise GristmillError(f"step '{self.step_id}' needs a document, but this run has no input")
        return self.text


@dataclass(frozen=True)
class Comparison:
    """How a candidate's answer to a step compares with the reference output (eval and shadow mode).

    `agreed` is the verdict; `label` is the (reference, answer) pair of a step that picks one label
    (precision and recall per label come from these); `fields` says for each field whether it agreed.
    """

    agreed: bool
    label: tuple[str | None, str | None] | None = None
    fields: Mapping[str, bool] | None = None


@dataclass(frozen=True)
class StepResult:
    """What a step produced; the runner records `output` under the step's id and applies the rest."""

    output: dict[str, Any]
    split: dict[str, Any] | None = None  # how a long input was split (kept under outputs["_split"])
    moved_to: Path | None = None  # the run's file is now here (a route moved it)


class StepKind(ABC):
    """One kind of step. Subclasses set `name` and `Spec` and implement `run`."""

    name: ClassVar[str]  # the key in a workflow file: `- classify: {...}`
    Spec: ClassVar[type[StrictModel]]
    calls_model: ClassVar[bool] = False  # outputs are stored before its calls; images need a vision model
    quotes_document: ClassVar[bool] = False  # `record: metadata` keeps only digests of its output
    # Its answers can be compared with a reference (eval, shadow mode): implements `replay` and `compare`.
    comparable: ClassVar[bool] = False

    @abstractmethod
    def run(self, spec: Any, ctx: StepContext) -> StepResult:
        """Do the step; raise a GristmillError (in one sentence) when it cannot."""

    def check(self, step: Step, at: KeyPath, earlier: Mapping[str, Step], later: list[str]) -> None:  # noqa: B027
        """Cross-check the step against the workflow around it; raise `problem(...)` with a key path."""

    def labels(self, spec: Any) -> list[str] | None:
        """The closed set of labels the step decides between (a route can go `by` it); None if it decides none."""
        return None

    def actions(self, spec: Any) -> list[tuple[KeyPath, Action]]:
        """The route actions the step declares, with their key paths inside the spec."""
        return []

    def writes_into(self, spec: Any) -> list[str]:
        """Templates of the folders the step puts files into (`check` looks at them; the watch leaves them out)."""
        return []

    def decided_by(self, spec: Any) -> str | None:
        """The id of the step whose output decides what this step does (a route's `by`); None if none.

        `gristmill correct --refile` runs such a step again after that output was corrected.
        """
        return None

    def replay(self, spec: Any, ask: Asker, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Ask a recorded question again, checked as `run` checks it; BadAnswer when the answer is unusable."""
        raise NotImplementedError(f"step kind '{self.name}' cannot be replayed")

    def compare(self, spec: Any, reference: Mapping[str, Any], answer: Mapping[str, Any]) -> Comparison:
        """How `answer` compares with the `reference` output (bookkeeping keys such as `_text` left out)."""
        raise NotImplementedError(f"step kind '{self.name}' cannot be compared")

    def training_answer(self, spec: Any, output: Mapping[str, Any]) -> str | None:
        """The assistant's message a fine-tuned model should learn for this output; None: not an example."""
        return None
