"""Collecting `items` for scheduled runs: files since the last successful run, other workflows' runs."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from daemon.domain import NewRun, Origin, RunStatus
from daemon.errors import SkipRun
from daemon.schedule.inputs import InputCollector, document
from daemon.workflow import Workflow

NOW = datetime(2026, 11, 11, 7, 0, tzinfo=UTC)


def _digest(input_: dict) -> Workflow:
    return Workflow.model_validate({
        "name": "digest", "trigger": {"schedule": {"cron": "0 7 * * *"}}, "input": input_,
        "steps": [{"summarise": {"max_words": 50}}],
    })  # fmt: skip


def _finished(store, workflow, *, name=None, outputs=None, status=RunStatus.SUCCEEDED):
    new = NewRun(workflow=workflow, trigger=Origin.FILE if name else Origin.MANUAL,
                 input_path=f"/in/{name}" if name else None)  # fmt: skip
    run, _ = store.enqueue(new)
    claimed = store.claim("t", 60, run_id=run.id)
    store.finish(claimed.id, "t", status, outputs=outputs or {})
    return store.get(run.id)


def _file(folder, name, text, age: timedelta):
    path = folder / name
    path.write_text(text)
    stamp = (datetime.now(UTC) - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_files_since_the_last_successful_run(tmp_path, store):
    notes = tmp_path / "Notes"
    notes.mkdir()
    _file(notes, "old.md", "Old note", timedelta(hours=2))
    _file(notes, "skip.txt", "not a note", timedelta(minutes=1))
    workflow = _digest({"files": {"path": str(notes), "patterns": ["*.md"]}})
    collector = InputCollector(store, max_chars=10_000, max_file_bytes=1_000_000)

    first = collector.collect(workflow, NOW)
    assert [i["name"] for i in first.items] == ["old.md"] and first.items[0]["text"] == "Old note"
    _finished(store, "digest")  # a successful digest run started just now
    _file(notes, "new.md", "New note", timedelta(hours=-1))  # changed after that run started

    second = collector.collect(workflow, NOW)

    assert [i["name"] for i in second.items] == ["new.md"]
    assert second.document.startswith("1 item: new.md.\n")


def test_files_since_a_duration(tmp_path, store):
    notes = tmp_path / "Notes"
    notes.mkdir()
    _file(notes, "week-old.md", "a", timedelta(days=8))
    _file(notes, "today.md", "b", timedelta(hours=3))
    workflow = _digest({"files": {"path": str(notes), "since": "7d"}})
    collected = InputCollector(store, max_chars=1000, max_file_bytes=1000).collect(workflow, datetime.now(UTC))
    assert [i["name"] for i in collected.items] == ["today.md"]


def test_runs_of_another_workflow_since_the_last_digest_and_then_nothing_new(store):
    workflow = _digest({"runs": {"workflow": "sort-inbox"}})
    collector = InputCollector(store, max_chars=10_000, max_file_bytes=1000)
    filed = {"kind": {"label": "invoice"}, "filed": {"action": "move_to", "destination": "/docs/Invoices/a.txt"}}
    _finished(store, "sort-inbox", name="a.txt", outputs=filed)
    _finished(store, "sort-inbox", name="broken.txt", status=RunStatus.FAILED)

    collected = collector.collect(workflow, NOW)

    assert [(i["name"], i["outputs"]) for i in collected.items] == [("a.txt", filed)]
    assert collected.document.startswith(
        "1 item: a.txt.\n\n## a.txt\nkind: invoice\nfiled: move_to /docs/Invoices/a.txt"
    )
    _finished(store, "digest")
    with pytest.raises(SkipRun, match="^nothing new$"):
        collector.collect(workflow, NOW)
    _finished(store, "sort-inbox", name="b.txt")
    assert [i["name"] for i in collector.collect(workflow, NOW).items] == ["b.txt"]


def test_a_long_digest_document_names_every_item_and_says_what_was_cut():
    items = [{"name": f"doc{n}.txt", "text": "word " * 200, "note": None} for n in range(50)]
    text = document(items, max_chars=3000)
    assert text.startswith("50 items: doc0.txt, doc1.txt") and "doc49.txt" in text.splitlines()[0]
    assert len(text) < 3200
    assert text.rstrip().endswith("more items not shown: the text limit was reached)")
