"""Where a run becomes model calls: load the input, execute the steps in order, keep outputs."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon import metrics
from daemon.domain import ModelCall, Run, TriggerKind
from daemon.engine.actions import Actions, recover
from daemon.engine.intake import Intake
from daemon.engine.steps import RUNNERS, StepContext
from daemon.errors import GristmillError, InputError, LeaseLost, ModelUnavailable, SkipRun
from daemon.extract import ExtractLimits, extract, vision
from daemon.llm.ask import Asker
from daemon.llm.base import ModelBackend
from daemon.store import RunStore
from daemon.store.redact import redact_call, redact_outputs
from daemon.workflow import StepKind, Workflow


# A scheduled run's `now` (in its time zone), `items` and document, read when it starts.
ScheduledScope = Callable[[Workflow, datetime], tuple[datetime, list[dict[str, Any]], str | None]]


@dataclass(frozen=True)
class Limits:
    """Input limits, from the settings."""

    max_file_bytes: int
    max_chars: int
    extract_seconds: float = 30.0
    extract_memory_mb: int = 1024
    context_tokens: int = 8192

    @property
    def extraction(self) -> ExtractLimits:
        """The limits the extractors apply."""
        return ExtractLimits(self.max_chars, self.extract_seconds, self.extract_memory_mb)


class Runner:
    """Executes one claimed run; raises to say how it ended when it did not succeed."""

    def __init__(
        self,
        *,
        workflows: Callable[[], Mapping[str, Workflow]],
        store: RunStore,
        backend: ModelBackend,
        intake: Intake,
        default_model: str,
        limits: Limits,
        post: Callable[[str, dict[str, Any]], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        scheduled: ScheduledScope | None = None,
    ) -> None:
        self.workflows, self.store, self.backend, self.intake = workflows, store, backend, intake
        self.default_model, self.limits, self.post, self.clock = default_model, limits, post, clock
        self.scheduled = scheduled

    def execute(self, run: Run, owner: str, *, dry_run: bool = False) -> dict[str, Any]:
        """Run every step not already done by an earlier attempt; return all outputs."""
        workflow = self.workflows().get(run.workflow)
        if workflow is None:
            raise SkipRun(f"workflow '{run.workflow}' is no longer loaded")
        # A route or write step interrupted by a crash left an intent: finish it from disk or redo it.
        outputs, done = recover(dict(run.outputs))
        file_path = _current_path(run, workflow, {**outputs, **done})
        scope: dict[str, Any] = {
            "run": {"id": run.id, "workflow": run.workflow, "started_at": self.clock().isoformat()},
            "now": self.clock(),
            "items": run.context.get("items", []),
        }
        document, images = None, ()
        if file_path is not None:
            scope["file"], document, images = self._load(run, file_path, fresh=not outputs)
        elif workflow.is_schedule and self.scheduled is not None:
            # The items are read when the run starts, so a late or retried run sees what is new then.
            scope["now"], scope["items"], document = self.scheduled(workflow, scope["now"])
        ctx = StepContext(
            workflow=workflow,
            scope=scope,
            document=document,
            asker=lambda step_id: self._asker(workflow, run, step_id),
            actions=Actions(dry_run=dry_run, chain=self._chain, post=self.post, done=done),
            file_path=file_path,
            images=images,
        )
        ctx.actions.record = lambda intent: self._save(run, owner, {**outputs, ctx.actions.step_id: intent})
        self._steps(run, owner, workflow, ctx, outputs)
        # Full outputs were stored while running so a crash can resume; what stays is the record setting's.
        return _metadata_only(workflow, outputs) if workflow.record == "metadata" else outputs

    def _steps(self, run: Run, owner: str, workflow: Workflow, ctx: StepContext, outputs: dict[str, Any]) -> None:
        unsaved = False
        try:
            for step in workflow.steps:
                if step.step_id not in outputs:
                    # Stored before the next model call, which may be slow to redo after a crash;
                    # a route or write stores them with its intent, and the finish stores the rest.
                    if unsaved and step.kind in _MODEL_KINDS:
                        self._save(run, owner, outputs)
                    ctx.actions.step_id = step.step_id
                    outputs[step.step_id] = RUNNERS[step.kind](step, ctx)
                    if ctx.splits:  # how inputs were split, beside the steps' own fields
                        outputs[SPLIT_KEY] = {**outputs.get(SPLIT_KEY, {}), **ctx.splits}
                    unsaved = True
                ctx.scope[step.step_id] = outputs[step.step_id]
        except ModelUnavailable:
            raise  # queued again with its attempt refunded: the full outputs are needed to resume
        except Exception as exc:
            final = isinstance(exc, SkipRun) or run.attempts >= run.max_attempts
            if workflow.record == "metadata" and final:
                self.store.save_outputs(run.id, owner, _metadata_only(workflow, outputs))
            raise

    def _save(self, run: Run, owner: str, outputs: dict[str, Any]) -> None:
        """Store the outputs so far; LeaseLost when another worker owns the run now."""
        if not self.store.save_outputs(run.id, owner, outputs):
            raise LeaseLost(run.id)

    def _load(self, run: Run, path: Path, *, fresh: bool) -> tuple[dict[str, Any], str, tuple[bytes, ...]]:
        try:
            info = os.lstat(path)
        except FileNotFoundError as exc:
            raise SkipRun(f"{path} was removed before its run started") from exc
        if stat.S_ISLNK(info.st_mode):
            raise SkipRun(f"{path} is a symbolic link; gristmill does not follow links")
        if info.st_size > self.limits.max_file_bytes:
            raise SkipRun(f"{path.name} is {info.st_size} bytes, over the limit of {self.limits.max_file_bytes}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{path} cannot be read ({exc.strerror})") from exc
        digest = hashlib.sha256(data).hexdigest()
        if fresh and run.trigger is TriggerKind.FILE and run.sha256 and digest != run.sha256:
            self._requeue_changed(run, path)
        extracted = extract(path, data, self.limits.extraction)
        if extracted.images:
            self._need_vision(run, path)
        file = {
            "path": str(path), "name": path.name, "stem": path.stem, "suffix": path.suffix,
            "size": info.st_size, "sha256": digest, "text": extracted.text, "kind": extracted.kind,
            "meta": extracted.meta, "truncated": extracted.truncated,
            "subfolder": run.context.get("subfolder", ""),
        }
        return file, extracted.text, extracted.images

    def _need_vision(self, run: Run, path: Path) -> None:
        """An image goes to the model as an image: skip the run when the model cannot see."""
        workflow = self.workflows()[run.workflow]
        if not any(step.kind in _MODEL_KINDS for step in workflow.steps):
            return
        model = workflow.model or self.default_model
        if "vision" not in self.backend.info(model).capabilities:
            raise SkipRun(
                f"{path.name} is an image and model '{model}' cannot read images (it lacks the vision "
                f"capability); set `model:` in workflow '{workflow.name}' to a vision model, e.g. llama3.2-vision or gemma3"
            )

    def _requeue_changed(self, run: Run, path: Path) -> None:
        workflow = self.workflows()[run.workflow]
        again, created = self.intake.file(workflow, path)
        where = f"queued again as run {again.id}" if created else f"run {again.id} has that content"
        raise SkipRun(f"{path.name} changed after it was queued; {where}")

    def _asker(self, workflow: Workflow, run: Run, step_id: str) -> Asker:
        def record(call: ModelCall) -> None:
            call = vision.recordable(call)  # image data is never stored, only its digest
            kept = redact_call(call) if workflow.record == "metadata" else call
            self.store.record_call(run.id, kept, attempt=run.attempts)
            metrics.model_call(run, kept)

        return Asker(
            backend=self.backend,
            record=record,
            model=workflow.model or self.default_model,
            options=dict(workflow.options),
            step_id=step_id,
            context_tokens=self.limits.context_tokens,
        )

    def _chain(self, name: str, path: Path) -> int | None:
        workflow = self.workflows().get(name)
        if workflow is None:
            raise GristmillError(f"the route says run workflow '{name}', which is not loaded; check its file")
        run, created = self.intake.file(workflow, path)
        return run.id if created else None


_TEXT_KINDS = (StepKind.SUMMARISE, StepKind.EXTRACT, StepKind.PROMPT)
_MODEL_KINDS = (*_TEXT_KINDS, StepKind.CLASSIFY)
SPLIT_KEY = "_split"  # outputs key: {step id: how its input was split}; step ids never start with "_"


def _metadata_only(workflow: Workflow, outputs: dict[str, Any]) -> dict[str, Any]:
    """`record: metadata`: outputs of steps that may quote the document become digests."""
    text_steps = {s.step_id for s in workflow.steps if s.kind in _TEXT_KINDS}
    return redact_outputs(outputs, text_steps)


def _current_path(run: Run, workflow: Workflow, outputs: dict[str, Any]) -> Path | None:
    """Where the run's file is now: an earlier attempt may already have moved it."""
    if run.input_path is None:
        return None
    current = Path(run.input_path)
    for step_id in workflow.step_ids:
        out = outputs.get(step_id)
        moved = isinstance(out, dict) and "move_to" in (out.get("action"), out.get("intent"))
        if moved and out.get("destination"):
            current = Path(out["destination"])
    return current
