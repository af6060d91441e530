"""`gristmill correct --refile`: run again the steps a corrected output decides (a route `by` a label).

The file is taken where it is now (where the run's route, or an earlier refile, put it) and handed
to the step kind itself, with the corrected output in its scope: the route renders and confines its
folder template and its action moves, copies or keeps the file through `Effects`, which records the
exact destination on the correction before touching the file and never overwrites. A refile killed
half-way is finished from disk by the next `--refile` of that run (`recover`), so the file has one
copy, in one place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from daemon.actions import ActionServices
from daemon.documents import read_document
from daemon.domain import ModelCall, Run, RunStatus
from daemon.engine.effects import Effects, is_intent, recover
from daemon.errors import GristmillError, UsageError
from daemon.files.hashing import sha256_bytes
from daemon.llm.ask import Asker
from daemon.llm.base import ModelBackend, ModelInfo
from daemon.settings import Settings
from daemon.steps import StepContext
from daemon.store.corrections import Correction, CorrectionStore
from daemon.workflow import Step, Workflow
from daemon.workflow.templates import file_scope


class NoModel(ModelBackend):
    """The model backend of a refile: routes ask no model, so a call here is a bug, said in one sentence."""

    url = "none"

    def chat(self, call: ModelCall, *, think: bool | None = None) -> ModelCall:
        raise GristmillError(f"--refile asks no model, but step '{call.step_id}' tried to")

    def list_models(self) -> list[str]:
        return []

    def info(self, model: str) -> ModelInfo:
        return ModelInfo(model)


@dataclass(frozen=True)
class Refile:
    """One refile: the run, its workflow as loaded now, and the correction it follows."""

    run: Run
    workflow: Workflow
    correction: Correction


def followers(workflow: Workflow, step_id: str) -> list[Step]:
    """The steps whose action the output of `step_id` decides; UsageError when none does."""
    found = [step for step in workflow.steps if step.kind.decided_by(step.spec) == step_id]
    if not found:
        raise UsageError(
            f"no step of workflow '{workflow.name}' acts on the output of step '{step_id}'; --refile applies "
            "the route of a corrected label (a route whose `by` is a classify step)"
        )
    return found


def refuse_unless_refilable(run: Run) -> None:
    """Only a succeeded run that really moved files has a file a refile may move."""
    if run.status is not RunStatus.SUCCEEDED:
        raise UsageError(f"run {run.id} is {run.status.value}; --refile moves the file of a succeeded run")
    if run.dry_run:
        raise UsageError(f"run {run.id} was a dry run; it moved nothing, so there is nothing to refile")
    if run.input_path is None:
        raise UsageError(f"run {run.id} has no input file to refile")


def refile(settings: Settings, corrections: CorrectionStore, job: Refile, earlier: list[Correction]) -> dict[str, Any]:
    """Apply the correction's route to the run's file where it is now; what each step did now (all are stored)."""
    here, finished = _where_now(job.run, corrections, earlier, job.correction)
    if not here.exists():
        raise UsageError(
            f"the file of run {job.run.id} is no longer at {here}; put it back there, or correct without --refile"
        )
    scope = _scope(settings, job, here, corrections)
    done: dict[str, Any] = {k: v for k, v in finished.items() if not is_intent(v)}
    did: dict[str, Any] = {}
    for step in followers(job.workflow, job.correction.step_id):
        if step.step_id in done:
            continue  # an earlier --refile of this correction finished it
        before = here
        result = step.kind.run(step.spec, _context(job, step, scope, here, corrections, done, finished))
        here = result.moved_to or here
        done[step.step_id] = did[step.step_id] = {**result.output, "from": str(before)}
        scope["file"] = {**scope["file"], **file_scope(here)}
        corrections.set_refile(job.correction.id, done)
    return did


def _context(
    job: Refile, step: Step, scope: dict[str, Any], here: Path, corrections: CorrectionStore,
    done: dict[str, Any], finished: Mapping[str, Any],
) -> StepContext:  # fmt: skip
    def record_intent(intent: dict[str, Any]) -> None:
        corrections.set_refile(job.correction.id, {**done, step.step_id: intent})

    prior = finished.get(step.step_id) if is_intent(finished.get(step.step_id)) else None
    effects = Effects(False, record_intent, prior)
    act = ActionServices(effects, _no_chain, _no_post, False)
    ask = Asker(backend=NoModel(), record=lambda call: None, model="none", step_id=step.step_id)
    return StepContext(
        workflow=job.workflow, step_id=step.step_id, scope=MappingProxyType(scope), text=None, images=(),
        file_path=here, asking=lambda: ask, act=act, trigger_context=MappingProxyType(job.run.context),
    )  # fmt: skip  # (the fields read as one record)


def _no_chain(name: str, path: Path) -> int | None:
    raise UsageError(f"the corrected label's route runs workflow '{name}'; --refile only moves, copies or keeps files")


def _no_post(url: str, body: dict[str, Any]) -> None:
    raise UsageError(f"the corrected label's route posts to {url}; --refile only moves, copies or keeps files")


def _where_now(
    run: Run, corrections: CorrectionStore, earlier: list[Correction], current: Correction
) -> tuple[Path, dict[str, Any]]:
    """Where the run's file is now, finishing interrupted refiles from disk; and `current`'s own refile so far."""
    here = Path(run.file_now() or "")
    own: dict[str, Any] = {}
    for correction in [*earlier, current]:
        if not correction.refile:
            continue
        finished, complete = recover(dict(correction.refile))
        state = {**finished, **complete}
        if state != correction.refile:
            corrections.set_refile(correction.id, state)  # an intent that never happened is forgotten
        here = Path(_moved_by(str(here), state.values()))
        if correction.id == current.id:
            own = state
    return here, own


def _moved_by(path: str | None, outputs: Any) -> str:
    """The last place a move in `outputs` (step outputs, or complete intents) put the file."""
    current = path or ""
    for out in outputs:
        moved = isinstance(out, dict) and "move_to" in (out.get("action"), out.get("intent"))
        if moved and out.get("destination"):
            current = out["destination"]
    return current


def _scope(settings: Settings, job: Refile, here: Path, corrections: CorrectionStore) -> dict[str, Any]:
    """What the step's templates see: the file now, the run, and every output with its corrections applied."""
    run = job.run
    data = here.read_bytes()
    document = read_document(here, data, settings.read_limits)
    file = file_scope(
        here, size=os.lstat(here).st_size, sha256=sha256_bytes(data), text=document.text, kind=document.kind,
        meta=document.meta, truncated=document.truncated, subfolder=run.context.get("subfolder", ""),
    )  # fmt: skip  # (the fields read as one record)
    started = run.started_at or run.created_at
    scope: dict[str, Any] = {
        "run": {"id": run.id, "workflow": run.workflow, "started_at": started.isoformat()},
        "now": datetime.now(UTC), "items": run.context.get("items", []), "file": file,
    }  # fmt: skip
    outputs = {k: v for k, v in run.outputs.items() if not k.startswith("_")}
    for (_, step_id), correction in corrections.effective(run_ids=[run.id]).items():
        outputs[step_id] = correction.output
    outputs[job.correction.step_id] = job.correction.output
    return scope | outputs
