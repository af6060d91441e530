"""`gristmill correct`: record what a step's output should have been (the CLI and the dashboard's form).

The workflow file, when it still loads, is the judge of what fits: a label must be one of the
step's declared labels, a field one of its declared fields, converted to its declared type.
"""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Sequence
from typing import Any

from daemon.engine.refile import Refile, followers, refuse_unless_refilable
from daemon.engine.refile import refile as apply_refile
from daemon.errors import BadAnswer, UsageError
from daemon.llm.answers import check_fields, match_label
from daemon.settings import Settings
from daemon.store import RunStore
from daemon.store.corrections import Change, Correction, CorrectionStore
from daemon.workflow import Workflow, load_workflows

# Step kinds by their names in workflow files (plugins may add others; those take no corrections here).
SUMMARISE, CLASSIFY, EXTRACT, PROMPT = "summarise", "classify", "extract", "prompt"


def os_user() -> str:
    """Who is correcting: the account running this process (read from the system, not the environment)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid {os.getuid()}"


def build_change(
    workflow: Workflow | None, step_id: str, *, label: str | None, sets: Sequence[str], text: str | None
) -> Change:
    """The one correction given (--label, --set FIELD=VALUE…, --text), checked against the workflow if loaded."""
    if sum((label is not None, bool(sets), text is not None)) != 1:
        raise UsageError("give exactly one of --label, --set FIELD=VALUE (repeatable) or --text")
    step = _step(workflow, step_id)
    if label is not None:
        return Change.label_of(_declared_label(step, label))
    if text is not None:
        _expect(step, (SUMMARISE, PROMPT), "--text")
        return Change.text_of(text)
    _expect(step, (EXTRACT, PROMPT), "--set")
    return Change.fields_of(_typed_fields(step, dict(_split(item) for item in sets)))


def correct_run(
    settings: Settings,
    store: RunStore,
    run_id: int,
    step_id: str,
    *,
    label: str | None,
    sets: Sequence[str],
    text: str | None,
) -> Correction:
    """`gristmill correct`: check the correction against the run's workflow file (when it loads) and record it."""
    workflow = load_workflows(settings.workflows)[0].get(store.get(run_id).workflow)
    change = build_change(workflow, step_id, label=label, sets=sets, text=text)
    return CorrectionStore(store.engine).add(run_id, step_id, change, author=os_user())


def refile_run(
    settings: Settings, store: RunStore, run_id: int, step_id: str, *, label: str | None, sets: Sequence[str],
    text: str | None,
) -> tuple[Correction, dict[str, Any]]:  # fmt: skip
    """`gristmill correct --refile`: record the correction, then apply its route to the run's file where it is now.

    The same command again (or `--refile` with no correction) finishes a refile that was
    interrupted, and records nothing twice. Returns the correction and what this call did.
    """
    run = store.get(run_id)
    workflow = load_workflows(settings.workflows)[0].get(run.workflow)
    if workflow is None:
        raise UsageError(f"workflow '{run.workflow}' is not loaded; --refile needs its routes (fix or restore it)")
    refuse_unless_refilable(run)
    followers(workflow, step_id)
    corrections = CorrectionStore(store.engine)
    correction = _the_correction(corrections, workflow, run_id, step_id, label=label, sets=sets, text=text)
    earlier = [c for c in corrections.for_run(run_id) if c.id != correction.id]
    did = apply_refile(settings, corrections, Refile(run, workflow, correction), earlier)
    return corrections.latest(run_id, step_id) or correction, did


def _the_correction(
    corrections: CorrectionStore, workflow: Workflow, run_id: int, step_id: str, *, label: str | None,
    sets: Sequence[str], text: str | None,
) -> Correction:  # fmt: skip
    """The correction a refile follows: the one given (the latest, when it says the same), else the latest."""
    latest = corrections.latest(run_id, step_id)
    if label is None and not sets and text is None:
        if latest is None:
            raise UsageError(f"step '{step_id}' of run {run_id} has no correction to refile by; give one: --label L")
        return latest
    change = build_change(workflow, step_id, label=label, sets=sets, text=text)
    if latest is not None and latest.change == change.payload():
        return latest  # the same command again: finish its refile rather than record it twice
    return corrections.add(run_id, step_id, change, author=os_user())


def _step(workflow: Workflow | None, step_id: str) -> Any:
    if workflow is None:
        return None
    try:
        return workflow.step(step_id)
    except KeyError:
        raise UsageError(
            f"workflow '{workflow.name}' has no step '{step_id}'; its steps are: {', '.join(workflow.step_ids)}"
        ) from None


def _expect(step: Any, kinds: tuple[str, ...], option: str) -> None:
    if step is not None and step.kind.name not in kinds:
        allowed = " and ".join(kinds)
        raise UsageError(f"step '{step.step_id}' is a {step.kind.name} step; {option} is for {allowed} steps")


def _declared_label(step: Any, label: str) -> str:
    _expect(step, (CLASSIFY,), "--label")
    if step is None:
        return label.strip()
    labels = list(step.spec.labels)
    matched = match_label(label, labels)
    if matched is None:
        raise UsageError(f"'{label}' is not a label of step '{step.step_id}'; its labels are: {', '.join(labels)}")
    return matched


def _split(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"--set takes FIELD=VALUE, not '{item}'")
    return name.strip(), value


def _value(text: str) -> Any:
    """JSON when it is (12.5, true, null, ["a"]), else the text itself (ACME, 2026-12-15)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _typed_fields(step: Any, values: dict[str, str]) -> dict[str, Any]:
    """Each value converted to its declared type (a number from "1,234.50"); a wrong one is a UsageError."""
    if step is None or step.kind.name != EXTRACT:
        return {name: _value(text) for name, text in values.items()}
    properties = step.spec.json_schema()["properties"]
    unknown = sorted(set(values) - set(properties))
    if unknown:
        raise UsageError(
            f"step '{step.step_id}' has no field {', '.join(unknown)}; its fields are: {', '.join(properties)}"
        )
    typed = {}
    for name, text in values.items():
        # `--set invoice_number=0042` is the text 0042 for a string field, not the number 42.
        value = text if "string" in properties[name]["type"] else _value(text)
        try:
            typed |= check_fields({name: value}, {"properties": {name: properties[name]}})
        except BadAnswer as exc:
            raise UsageError(f"--set {name}: {exc.message}") from None
    return typed


def refile_lines(did: dict[str, Any], correction: Correction) -> list[str]:
    """What a refile did, one line per route step, for people."""
    if not did:
        return [f"already refiled: {json.dumps(correction.refile, ensure_ascii=False)}"]
    lines = []
    for step_id, done in did.items():
        if done.get("action") in ("move_to", "copy_to") and done.get("destination") != done.get("from"):
            verb = "moved" if done["action"] == "move_to" else "copied"
            lines.append(f"step {step_id}: {verb} {done.get('from')} to {done['destination']} ({done.get('why')})")
        else:
            lines.append(f"step {step_id}: the file stays at {done.get('destination') or done.get('from')}")
    return lines
