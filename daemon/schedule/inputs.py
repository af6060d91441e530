"""What a scheduled run reads: the files changed in a folder, or another workflow's recorded runs.

`since: last_run` means since the last successful run of this workflow started (what it read is
then digested); `24h`, `7d` mean that long before now. Templates see the result as `items`; the
model reads `document`, which starts with the list of item names.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.documents import ReadLimits, read_document
from daemon.errors import GristmillError, SkipRun
from daemon.schedule.ticks import zone_of
from daemon.store import RunStore
from daemon.triggers.match import Matcher
from daemon.triggers.roots import absolute_folder
from daemon.words import count
from daemon.workflow import FilesInput, RunsInput, Workflow
from daemon.workflow.templates import file_scope

NOTHING_NEW = "nothing new"
MAX_RUN_ITEMS = 100_000  # a guard against a runaway query, not a working limit


@dataclass(frozen=True)
class Collected:
    """The items of a scheduled run and the document the model reads."""

    items: list[dict[str, Any]]
    document: str


class InputCollector:
    """Collects the `items` of scheduled runs; raises SkipRun("nothing new") when there are none."""

    def __init__(self, store: RunStore, *, max_chars: int, max_file_bytes: int) -> None:
        self.store, self.max_chars, self.max_file_bytes = store, max_chars, max_file_bytes

    def scope(self, workflow: Workflow, now: datetime) -> tuple[datetime, list[dict[str, Any]], str | None]:
        """What a scheduled run's templates and model see: `now` in its time zone, items, document."""
        spec = workflow.trigger.spec_of("schedule")
        local = now.astimezone(zone_of(spec.timezone if spec else None))
        if workflow.input is None:
            return local, [], None
        collected = self.collect(workflow, now)
        return local, collected.items, collected.document

    def collect(self, workflow: Workflow, now: datetime) -> Collected:
        """The items of one run of `workflow`, read at `now`."""
        spec = workflow.input
        assert spec is not None
        if spec.files is not None:
            items = self._files(spec.files, self._since(workflow, spec.files, now))
        else:
            assert spec.runs is not None
            items = self._runs(spec.runs, self._since(workflow, spec.runs, now))
        if not items:
            raise SkipRun(NOTHING_NEW)
        return Collected(items, document(items, self.max_chars))

    def _since(self, workflow: Workflow, spec: FilesInput | RunsInput, now: datetime) -> datetime | None:
        if spec.since_delta is not None:
            return now - spec.since_delta
        last = self.store.last_succeeded(workflow.name)
        return None if last is None else (last.started_at or last.finished_at)

    def _runs(self, spec: RunsInput, since: datetime | None) -> list[dict[str, Any]]:
        found = self.store.succeeded_since(spec.workflow, since, MAX_RUN_ITEMS)
        return [
            {
                "id": run.id, "workflow": run.workflow, "input": run.input_path,
                "name": Path(run.input_path).name if run.input_path else f"run {run.id}",
                "status": run.status.value, "outputs": run.outputs,
                "created_at": run.created_at.isoformat(),
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            }
            for run in found
        ]  # fmt: skip

    def _files(self, spec: FilesInput, since: datetime | None) -> list[dict[str, Any]]:
        root = absolute_folder(spec.path)
        matcher = Matcher(root, tuple(spec.patterns))
        try:
            entries = sorted(os.scandir(root), key=lambda e: e.name)
        except FileNotFoundError as exc:
            raise GristmillError(f"the input folder {root} does not exist; create it or fix input.files.path") from exc
        items = []
        budget = self.max_chars
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            changed = datetime.fromtimestamp(info.st_mtime, UTC)
            if not stat.S_ISREG(info.st_mode) or not matcher.wants(Path(entry.path)):
                continue
            if since is not None and changed <= since:
                continue
            item = self._file_item(Path(entry.path), info, changed, budget)
            budget = max(0, budget - len(item["text"]))
            items.append(item)
        return items

    def _file_item(self, path: Path, info: os.stat_result, changed: datetime, budget: int) -> dict[str, Any]:
        item = file_scope(path, size=info.st_size, mtime=changed.isoformat(), text="", note=None)
        if info.st_size > self.max_file_bytes:
            item["note"] = f"over the size limit of {self.max_file_bytes} bytes; not read"
        elif budget <= 0:
            item["note"] = "not read: the run's text limit was reached"
        else:
            try:
                item["text"] = read_document(path, path.read_bytes(), ReadLimits(max_chars=budget)).text
            except (GristmillError, OSError) as exc:
                item["note"] = f"not read: {exc}"
        return item


def document(items: list[dict[str, Any]], max_chars: int) -> str:
    """The text the model reads: the list of item names first, then one section per item."""
    names = ", ".join(item["name"] for item in items)
    parts = [f"{count(len(items), 'item')}: {names}.\n"]
    used = len(parts[0])
    for shown, item in enumerate(items):
        section = f"\n## {item['name']}\n{_body(item)}\n"
        if used + len(section) > max_chars:
            parts.append(f"\n(… {len(items) - shown} more items not shown: the text limit was reached)\n")
            break
        parts.append(section)
        used += len(section)
    return "".join(parts)


def _body(item: dict[str, Any]) -> str:
    if "outputs" not in item:
        return item["text"] or f"({item['note']})"
    outputs = {k: v for k, v in item["outputs"].items() if not k.startswith("_")}  # "_split" is bookkeeping
    lines = [_output_line(step_id, out) for step_id, out in outputs.items() if isinstance(out, dict)]
    return "\n".join(line for line in lines if line) or "(no outputs recorded)"


def _output_line(step_id: str, output: dict[str, Any]) -> str:
    """One step's output in a few words: a text as it is, a label, a destination, or the fields."""
    if isinstance(output.get("text"), str):
        return output["text"]
    if "destination" in output:
        return f"{step_id}: {output.get('action')} {output.get('destination') or ''}".rstrip()
    if "label" in output:
        return f"{step_id}: {output.get('label') or 'no label'}"
    if set(output) == {"path"}:
        return ""  # a write step: the file it wrote says nothing about the document
    return f"{step_id}: " + "; ".join(f"{k}: {v}" for k, v in output.items() if v not in (None, ""))
