"""How runs and model calls look to users: JSON objects and rich tables."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from daemon.domain import ModelCall, Run

NS = 1_000_000_000


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def run_json(run: Run) -> dict[str, Any]:
    """A run as `runs --json` prints it."""
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
    }


def call_json(call: ModelCall) -> dict[str, Any]:
    """A model call as `show --json` prints it."""
    return {
        "id": getattr(call, "id", None),
        "step": call.step_id,
        "attempt": getattr(call, "attempt", None),
        "model": call.model,
        "options": call.options,
        "format": call.format,
        "messages": call.messages,
        "answer": call.answer,
        "thinking": call.thinking,
        "error": call.error,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "total_duration_ns": call.total_duration_ns,
        "load_duration_ns": call.load_duration_ns,
        "prompt_eval_duration_ns": call.prompt_eval_duration_ns,
        "eval_duration_ns": call.eval_duration_ns,
        "wall_ms": call.wall_ms,
        "started_at": _time(call.started_at),
    }


def runs_table(runs: list[Run]) -> Table:
    """The run history as a table."""
    table = Table(box=None, pad_edge=False)
    for column in ("id", "workflow", "status", "input", "created", "tries", "note"):
        table.add_column(column, overflow="fold")
    for run in runs:
        table.add_row(
            str(run.id), run.workflow, run.status.value, Path(run.input_path).name if run.input_path else "—",
            run.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"), str(run.attempts),
            run.error or _note(run),
        )
    return table


def _note(run: Run) -> str:
    for output in run.outputs.values():
        if isinstance(output, dict) and output.get("destination"):
            return f"→ {output['destination']}"
    return ""


def print_run(console: Console, run: Run, calls: list[ModelCall]) -> None:
    """One run with each step's calls and output, for `show`."""
    console.print(f"[bold]run {run.id}[/] {run.workflow} [bold]{run.status.value}[/] ({run.trigger.value})")
    console.print(f"input: {run.input_path or '—'}   attempts: {run.attempts}/{run.max_attempts}")
    console.print(f"created {_time(run.created_at)}  finished {_time(run.finished_at) or '—'}")
    if run.error:
        console.print(f"[red]error:[/] {run.error}")
    cut = run.outputs.get("_input") or {}
    if cut.get("truncated"):
        console.print(
            f"input cut: the model read {cut.get('kept')} of {cut.get('chars')} characters (GRISTMILL_MAX_CHARS)"
        )
    for step_id, output in run.outputs.items():
        if step_id == "_input":
            continue
        console.print(f"\n[bold]step {step_id}[/] → {output}")
        for call in (c for c in calls if c.step_id == step_id):
            _print_call(console, call)


def _print_call(console: Console, call: ModelCall) -> None:
    seconds = (call.total_duration_ns or 0) / NS
    console.print(
        f"  model {call.model}  tokens in {call.prompt_tokens} out {call.completion_tokens}  "
        f"{seconds:.2f}s server, {(call.wall_ms or 0) / 1000:.2f}s wall  options {call.options or {}}"
    )
    prompt = call.messages[-1]["content"] if call.messages else ""
    console.print(f"  prompt: {_clip(prompt)}", markup=False)
    console.print(f"  answer: {_clip(call.answer or call.error or '')}", markup=False)


def _clip(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
