"""`gristmill eval`: compare a candidate model with a workflow's recorded runs; list and show stored evals."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from daemon.durations import parse_duration
from daemon.errors import UsageError
from daemon.evals.replay import Selection, from_shadow, replay
from daemon.llm.connect import model_backend
from daemon.settings import Settings
from daemon.store import RunStore
from daemon.store.evals import EvalRecord
from daemon.words import count, millis, percent
from daemon.workflow import Workflow, load_workflows


def selection(since: str | None, limit: int | None) -> Selection:
    """--since 30d and --limit N as a Selection of runs."""
    if since is None:
        return Selection(None, limit)
    try:
        return Selection(datetime.now(UTC) - parse_duration(since), limit)
    except ValueError as exc:
        raise UsageError(f"--since {since!r}: {exc}") from exc


def loaded_workflow(settings: Settings, name: str) -> Workflow:
    """The workflow as its file says now; UsageError when it does not load."""
    loaded, errors = load_workflows(settings.workflows)
    if name in loaded:
        return loaded[name]
    broken = [str(e) for e in errors if name in str(e)]
    hint = f" ({broken[0]})" if broken else "; list them with: gristmill workflows"
    raise UsageError(f"no workflow named '{name}' is loaded{hint}")


def run_eval(
    settings: Settings, store: RunStore, name: str, *, model: str | None, shadow: bool, chosen: Selection,
    progress: Console,
) -> EvalRecord:  # fmt: skip
    """Replay the recorded questions to `model` (with a progress bar), or read the shadow answers."""
    workflow = loaded_workflow(settings, name)
    if shadow:
        return from_shadow(store, workflow, model, chosen)
    if model is None:
        raise UsageError("give the candidate: gristmill eval WORKFLOW --model CANDIDATE (or --shadow)")
    with _bar(progress, f"asking {model}") as (started, advance):
        return replay(
            store, workflow, model, model_backend(settings), chosen, workers=settings.concurrency,
            started=started, advance=advance,
        )  # fmt: skip


@contextmanager
def _bar(console: Console, what: str):
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(what, total=None)
        yield (lambda total: bar.update(task, total=total)), (lambda: bar.advance(task))


def eval_json(record: EvalRecord) -> dict[str, Any]:
    """An eval as `eval --json` prints it."""
    return {
        "eval": record.id, "workflow": record.workflow, "model": record.model, "source": record.source,
        "created_at": record.created_at.isoformat(), "since": record.since.isoformat() if record.since else None,
        "limit": record.run_limit, "runs": record.runs, "agreement": record.agreement,
        "steps": record.figures.get("steps", {}),
    }  # fmt: skip  # (the fields read as one record)


def print_eval(console: Console, record: EvalRecord) -> None:
    """An eval for people: per step the agreement, invalid answers, disagreements, labels or fields, speed."""
    source = "shadow answers" if record.source == "shadow" else "a replay"
    console.print(
        f"[bold]eval {record.id}[/]: {escape(record.model)} on {escape(record.workflow)}, from {source} of "
        f"{count(record.runs, 'recorded run')}; agreement {percent(record.agreement)}"
    )
    for step_id, figures in record.figures.get("steps", {}).items():
        _print_step(console, step_id, figures, record.model)


def _print_step(console: Console, step_id: str, f: dict[str, Any], model: str) -> None:
    console.print(
        f"\n[bold]step {escape(step_id)}[/] ({f['kind']}): {f['agreed']} of {f['compared']} agree "
        f"({percent(f['agreement'])}), {count(f['invalid'], 'invalid answer')}, "
        f"{count(f['corrected_references'], 'corrected reference')}"
    )
    if f["disagreements"]:
        console.print(f"  disagreements: runs {', '.join(map(str, f['disagreements']))}", highlight=False)
    if f["invalid_runs"]:
        console.print(f"  invalid answers: runs {', '.join(map(str, f['invalid_runs']))}", highlight=False)
    for why, n in f["not_comparable"].items():
        console.print(f"  not comparable: {n} ({why})", markup=False, highlight=False)
    if "labels" in f:
        rows = [[label, str(c["reference"]), str(c["answered"]), percent(c["precision"]), percent(c["recall"])]
                for label, c in f["labels"].items()]  # fmt: skip
        console.print(_table(("label", "reference", "answered", "precision", "recall"), rows))
    if "fields" in f:
        rows = [[name, f"{c['agreed']}/{c['compared']}", percent(c["agreement"])] for name, c in f["fields"].items()]
        console.print(_table(("field", "agreed", "agreement"), rows))
    models = ", ".join(f["reference_models"]) or "reference"
    rows = [[who, millis(s["p50_ms"]), millis(s["p95_ms"]), _rate(s["tokens_per_s"])]
            for who, s in ((models, f["latency"]["reference"]), (model, f["latency"]["candidate"]))]  # fmt: skip
    console.print(_table(("model", "latency p50", "p95", "tokens/s"), rows))


def print_eval_list(console: Console, records: list[EvalRecord]) -> None:
    """Stored evals, newest first."""
    if not records:
        console.print("no evals yet; compare a candidate with: gristmill eval WORKFLOW --model CANDIDATE")
        return
    rows = [
        [str(r.id), r.created_at.astimezone().strftime("%Y-%m-%d %H:%M"), r.workflow, r.model, r.source,
         str(r.runs), percent(r.agreement)]
        for r in records
    ]  # fmt: skip
    console.print(_table(("eval", "when", "workflow", "model", "from", "runs", "agreement"), rows))


def _table(headers: tuple[str, ...], rows: list[list[str]]) -> Table:
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 2))
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    return table


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"
