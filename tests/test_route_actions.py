"""Route actions in-process, with real Effects on real folders and recording `chain`/`post` callables.

The end-to-end tests (test_watch_app, test_crash) show the actions through the daemon; these pin what
an action returns and the sentences of the guards that a loaded workflow never lets a run reach.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from daemon.actions import ActionServices
from daemon.actions.chain import RunWorkflow
from daemon.actions.files import CopyTo, Keep, MoveTo
from daemon.engine.effects import Effects
from daemon.errors import GristmillError
from daemon.steps import StepContext
from daemon.workflow import Workflow


def _workflow() -> Workflow:
    return Workflow.model_validate({
        "name": "sort", "trigger": {"watch": {"path": "/tmp/in"}},
        "steps": [{"route": {"default": {"run": "other"}}}],
    })  # fmt: skip


def _ctx(
    file_path: Path | None,
    *,
    dry_run: bool = False,
    chained: list | None = None,
    intents: list | None = None,
    read: dict | None = None,
) -> StepContext:
    act = ActionServices(
        Effects(dry_run, record=(intents if intents is not None else []).append),
        chain=lambda name, path: (chained if chained is not None else []).append((name, path)) or 41,
        post=lambda url, body: None,
        dry_run=dry_run,
    )
    scope = {"file": read or {"path": str(file_path)}} if file_path else {}
    return StepContext(
        workflow=_workflow(), step_id="route", scope=scope, text=None, images=(), file_path=file_path,
        asking=lambda: None, act=act,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(("action", "target"), [(RunWorkflow(), "other"), (MoveTo(), "/tmp/x"), (CopyTo(), "/tmp/x")])
def test_a_file_action_on_a_run_without_a_file_fails_naming_the_action(action, target):
    # The loader refuses these actions where the trigger gives no file; this is the guard behind it.
    with pytest.raises(GristmillError) as caught:
        action.perform(target, _ctx(None))
    assert str(caught.value) == f"'{action.name}' needs an input file, but this run has none"


def test_a_run_action_queues_the_other_workflow_on_the_file_and_a_dry_run_queues_nothing(tmp_path):
    file, chained = tmp_path / "a.txt", []
    file.write_text("a")
    assert RunWorkflow().perform("other", _ctx(file, chained=chained)).destination == "other"
    assert chained == [("other", file)]
    assert RunWorkflow().perform("other", _ctx(file, dry_run=True, chained=chained)).destination == "other"
    assert chained == [("other", file)]


def test_move_and_copy_return_where_the_file_went_and_keep_where_it_is(tmp_path):
    inbox, done = tmp_path / "Inbox", tmp_path / "Done"
    inbox.mkdir()
    (inbox / "a.txt").write_text("a")
    (done / "a.txt").parent.mkdir()
    (done / "a.txt").write_text("taken")

    copied = CopyTo().perform(str(done), _ctx(inbox / "a.txt"))
    assert (copied.destination, copied.moved_to) == (str(done / "a (1).txt"), None)
    would = MoveTo().perform(str(done), _ctx(inbox / "a.txt", dry_run=True))
    assert (would.destination, would.moved_to) == (str(done / "a (2).txt"), None)  # a dry run moves nothing
    assert (inbox / "a.txt").exists() and not (done / "a (2).txt").exists()
    moved = MoveTo().perform(str(done), _ctx(inbox / "a.txt"))
    assert (moved.destination, moved.moved_to) == (str(done / "a (2).txt"), done / "a (2).txt")
    assert not (inbox / "a.txt").exists() and (done / "a (2).txt").read_text() == "a"

    assert Keep().perform(True, _ctx(done / "a.txt")).destination == str(done / "a.txt")
    assert Keep().perform(True, _ctx(None)).destination is None


def test_a_move_or_copy_records_the_digest_the_run_read_when_the_file_is_where_it_was_read(tmp_path):
    # The run hashed the file when it read it; the intent reuses that digest instead of reading the file again.
    from daemon.files.hashing import sha256_file

    (tmp_path / "Inbox").mkdir()
    src = tmp_path / "Inbox" / "a.txt"
    src.write_text("a")
    read = {"path": str(src), "sha256": "e" * 64}  # what the run recorded reading (a stand-in digest)
    intents: list[dict] = []
    CopyTo().perform(str(tmp_path / "Copies"), _ctx(src, intents=intents, read=read))
    MoveTo().perform(str(tmp_path / "Done"), _ctx(src, intents=intents, read=read))
    assert [i["sha256"] for i in intents] == ["e" * 64, "e" * 64]
    moved = tmp_path / "Done" / "a.txt"
    elsewhere = {"path": str(src), "sha256": "e" * 64}  # read at the old place: the digest is taken again
    CopyTo().perform(str(tmp_path / "Again"), _ctx(moved, intents=intents, read=elsewhere))
    assert intents[-1]["sha256"] == sha256_file(moved)


def test_a_steps_asker_is_made_when_the_step_first_asks_and_not_for_a_move(tmp_path):
    # Made for every step of every run, it cost each step that never asks (a route, a write) a model wrapper.
    (tmp_path / "a.txt").write_text("a")
    made: list[str] = []
    ctx = dataclasses.replace(_ctx(tmp_path / "a.txt"), asking=lambda: made.append("asker") or "the asker")

    MoveTo().perform(str(tmp_path / "Done"), ctx)
    assert made == []
    assert ctx.ask == ctx.ask == "the asker"
    assert made == ["asker"]
