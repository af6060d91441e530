"""How runs and model calls look to users: JSON objects and rich tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from daemon.domain import ModelCall, Run
from daemon.words import one_line

if TYPE_CHECKING:
    from daemon.store.corrections import Correction

NS = 1_000_000_000


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def run_json(run: Run, *, corrected: bool = False) -> dict[str, Any]:
    """A run as `runs --json` prints it; `corrected`: some step of it has a correction."""
    return {
        "id": run.id,
        "workflow": run.workflow,
        "status": run.status.value,
        "trigger": run.trigger.value,
        "input": run.input_path,
        "sha256": run.sha256,
        "created_at": _time(run.created_at),
        "started_at": _time(run.started_at),
        "finished_at": _time(run.finished_at),
        "attempts": run.attempts,
        "max_attempts": run.max_attempts,
        "error": run.error,
        "outputs": run.outputs,
        "context": run.context,
        "corrected": corrected,
        "dry_run": run.dry_run,
    }


def correction_json(correction: Correction) -> dict[str, Any]:
    """A correction as `show --json` lists it under `corrections`."""
    return {
        "id": correction.id,
        "step": correction.step_id,
        "kind": correction.kind.value,
        "change": correction.change,
        "output": correction.output,
        "original": correction.original,
        "author": correction.author,
        "created_at": _time(correction.created_at),
        "refile": correction.refile,
    }


def call_json(call: ModelCall) -> dict[str, Any]:
    """A model call as `show --json` prints it."""
    return {
        "id": getattr(call, "id", None),
        "step": call.step_id,
        "attempt": getattr(call, "attempt", None),
        "model": call.model,
        "server": call.server,
        "options": call.options,
        "format": call.format,
        "messages": call.messages,
        "answer": call.answer,
        "thinking": call.thinking,
        "error": call.error,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "done_reason": call.done_reason,
        "total_duration_ns": call.total_duration_ns,
        "load_duration_ns": call.load_duration_ns,
        "prompt_eval_duration_ns": call.prompt_eval_duration_ns,
        "eval_duration_ns": call.eval_duration_ns,
        "wall_ms": call.wall_ms,
        "started_at": _time(call.started_at),
    }


RUN_COLUMNS = ("id", "workflow", "status", "input", "created", "tries", "note")


def run_rows(runs: list[Run]) -> list[list[str]]:
    """The run history as table rows (RUN_COLUMNS)."""
    return [
        [
            str(run.id), run.workflow, _status(run), Path(run.input_path).name if run.input_path else "—",
            run.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"), str(run.attempts), run.error or _note(run),
        ]
        for run in runs
    ]  # fmt: skip


def _status(run: Run) -> str:
    return f"{run.status.value} (dry run)" if run.dry_run else run.status.value


def rich_table(headers: Sequence[str], rows: list[list[str]]) -> Table:
    """A borderless rich table; long cells wrap between words."""
    table = Table(box=None, pad_edge=False)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*(Text(one_line(cell)) for cell in row))  # Text: a name like "[red]" is not markup
    return table


def print_table(console: Console, headers: Sequence[str], rows: list[list[str]]) -> None:
    """A rich table on a terminal; piped, one line per row with tab-separated cells, nothing padded or wrapped."""
    if console.is_terminal:
        console.print(rich_table(headers, rows))
        return
    for row in (list(headers), *rows):
        click.echo("\t".join(one_line(cell) for cell in row))


def _note(run: Run) -> str:
    for output in run.outputs.values():
        if isinstance(output, dict) and output.get("destination"):
            return f"→ {output['destination']}"
    return ""


def print_run(console: Console, run: Run, calls: list[ModelCall]) -> None:
    """One run with each step's calls and output, for `show`."""
    dry = ", dry run: nothing was moved or written" if run.dry_run else ""
    console.print(f"[bold]run {run.id}[/] {run.workflow} [bold]{run.status.value}[/] ({run.trigger.value}{dry})")
    where = one_line(run.input_path) if run.input_path else "—"
    console.print(f"input: {where}   attempts: {run.attempts}/{run.max_attempts}", markup=False, highlight=False)
    console.print(f"created {_time(run.created_at)}  finished {_time(run.finished_at) or '—'}")
    if run.error:
        console.print("[red]error:[/] " + escape(one_line(run.error)))
    _print_input(console, run.outputs.get("_input") or {}, [c for c in calls if c.step_id == "_input"])
    for step_id, output in run.outputs.items():
        if step_id == "_input":
            continue
        title = f"step {step_id}" if not step_id.startswith("_") else step_id  # _split, ...: beside the steps
        console.print(f"\n[bold]{escape(title)}[/]")
        console.print(as_yaml(output, indent="  "), markup=False, highlight=False, end="")
        for call in (c for c in calls if c.step_id == step_id):
            _print_call(console, call)


def as_yaml(value: Any, indent: str = "") -> str:
    """`value` as block YAML (Unicode kept, long text on one line), each line indented by `indent`."""
    text = yaml.safe_dump(value, allow_unicode=True, sort_keys=False, width=1_000_000, default_flow_style=False)
    return "".join(indent + line for line in text.splitlines(keepends=True))


def _print_input(console: Console, read: dict[str, Any], calls: list[ModelCall]) -> None:
    """How the input was read: scanned pages and the model that read them (with its calls), a cut."""
    pages = read.get("scanned_pages") or []
    if pages:
        which = f"{'page' if len(pages) == 1 else 'pages'} {', '.join(map(str, pages))}"
        console.print(f"input: {which} read by {read.get('read_by')}", markup=False, highlight=False)
        for call in calls:
            _print_call(console, call)
    if read.get("truncated"):
        console.print(
            f"input cut: the model read {read.get('kept')} of {read.get('chars')} characters (GRISTMILL_MAX_CHARS)"
        )


def _print_call(console: Console, call: ModelCall) -> None:
    seconds = (call.total_duration_ns or 0) / NS
    options = json.dumps(call.options or {}, ensure_ascii=False)
    console.print(
        f"  model {call.model} on {call.server or '—'}  tokens in {call.prompt_tokens} out {call.completion_tokens}  "
        f"{seconds:.2f}s server, {(call.wall_ms or 0) / 1000:.2f}s wall  options {options}",
        markup=False,
        highlight=False,
    )
    prompt = call.messages[-1]["content"] if call.messages else ""
    console.print(f"  prompt: {_clip(prompt)}", markup=False)
    console.print(f"  answer: {_clip(call.answer or call.error or '')}", markup=False)


def _clip(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
