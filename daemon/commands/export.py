"""`gristmill export`: write train.jsonl, valid.jsonl and a README.md from a workflow's recorded runs."""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from daemon.errors import UsageError
from daemon.export.chat import line
from daemon.export.dataset import Dataset, Only, build, exported_steps
from daemon.export.readme import readme
from daemon.settings import Settings
from daemon.store import RunStore
from daemon.store.evals import recorded_runs
from daemon.workflow import load_workflows


def export(
    settings: Settings, store: RunStore, name: str, out: Path, *, step_id: str | None, only: Only, valid: float,
    progress: Console, command: str,
) -> Dataset:  # fmt: skip
    """Build the dataset and write it into `out` (each file replaced whole, never half-written)."""
    if not 0 <= valid < 1:
        raise UsageError(f"--valid {valid} must be at least 0 and below 1 (a share of the runs, such as 0.1)")
    workflow = load_workflows(settings.workflows)[0].get(name)
    if workflow is None:
        raise UsageError(f"no workflow named '{name}' is loaded; export reads its steps from the workflow file")
    steps = exported_steps(workflow, step_id)
    runs = recorded_runs(store.engine, name)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=progress, transient=True, disable=not progress.is_terminal) as bar:
        task = bar.add_task("reading runs", total=len(runs) * len(steps))
        data = build(store, workflow, steps, runs, only=only, valid_share=valid, advance=lambda: bar.advance(task))
    _folder(out)
    _replace(out / "train.jsonl", "".join(line(e.messages) + "\n" for e in data.train))
    _replace(out / "valid.jsonl", "".join(line(e.messages) + "\n" for e in data.valid))
    _replace(out / "README.md", readme(name, str(out), data, command=command))
    return data


def export_json(data: Dataset, out: Path) -> dict[str, Any]:
    """What `export --json` prints."""
    return {
        "out": str(out), "runs": data.runs, "train": len(data.train), "valid": len(data.valid),
        "corrected": sum(e.corrected for e in [*data.train, *data.valid]), "left_out": dict(data.left_out),
    }  # fmt: skip


def summary(data: Dataset, out: Path) -> str:
    """One line for people."""
    left = sum(data.left_out.values())
    return (
        f"wrote {len(data.train)} training and {len(data.valid)} validation examples from {data.runs} runs to {out} "
        f"({left} run steps left out; see {out / 'README.md'})"
    )


def command_line(args: list[str]) -> str:
    """The command as typed, for the README."""
    return "gristmill " + " ".join(shlex.quote(a) for a in args)


def _folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the folder {out}: {exc.strerror}") from exc
    if not out.is_dir():
        raise UsageError(f"{out} is not a folder; give --out a folder for train.jsonl, valid.jsonl and README.md")


def _replace(path: Path, text: str) -> None:
    """Write `path` whole: a temporary file beside it, then a rename over the old one."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".gristmill-tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
