"""Two workflows that move files out of the same folder: `check` warns, and every file ends with a record
in both workflows, the one that did not get it naming the run that moved it and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.app import App
from daemon.domain import RunStatus
from daemon.settings import Settings
from tests.support import INVOICE, LETTER, make_home, wait_for
from tests.test_crash import DEADLINE, Daemon

FILING = """name: filing
trigger:
  watch: {{path: {inbox}, settle_seconds: 0.2}}
steps:
  - id: kind
    classify: {{labels: [invoice, letter]}}
  - route:
      by: kind
      routes:
        invoice: {{move_to: {docs}/Invoices}}
      default: {{move_to: {docs}/Other}}
"""

ARCHIVE = """name: archive
trigger:
  watch: {{path: {inbox}, settle_seconds: 0.2}}
steps:
  - summarise: {{max_words: 10}}
  - route: {{default: {{move_to: {archive}}}}}
"""

FAILING = """name: failing
trigger:
  watch: {{path: {inbox}, settle_seconds: 0.2}}
on_failure: {{move_to: {failed}}}
steps:
  - write: {{path: "{failed}/x.txt", content: "{{{{ no_such_thing.at_all }}}}"}}
"""


def _workflows(home, *texts: str) -> None:
    names = {"inbox": home.inbox, "docs": home.docs, "archive": home.root / "Archive", "failed": home.root / "Failed"}
    for n, text in enumerate(texts):
        home.write_workflow(f"w{n}.yaml", text.format(**names))


def _records(runs: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """file name → workflow → its runs."""
    found: dict[str, dict[str, list[dict]]] = {}
    for run in runs:
        found.setdefault(Path(run["input"]).name, {}).setdefault(run["workflow"], []).append(run)
    return found


def test_check_warns_naming_both_workflows_and_the_folder(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    _workflows(home, FILING, ARCHIVE)

    checked = home.cli("check")

    assert checked.returncode == 0, checked.stdout
    assert (
        f"warning: workflows archive and filing both take files from {home.inbox}, and archive and filing "
        "move them away: each file is worked on by whichever run comes first, and the other workflow records "
        "it as skipped, naming the run that moved it"
    ) in checked.stdout


def test_each_file_gets_a_record_in_both_workflows_naming_the_run_that_moved_it(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    _workflows(home, FILING, ARCHIVE)
    standin.config.latency = 0.02
    names = [f"doc-{n:02d}.txt" for n in range(40)]
    daemon = Daemon(home).start()
    try:
        # Dropped once it watches: each file then queues a run in both workflows, one after the other.
        wait_for(lambda: "gristmill ready" in daemon.log, timeout=DEADLINE, what="the daemon to be ready")
        for n, name in enumerate(names):
            home.drop(name, (INVOICE if n % 2 else LETTER) + f"\ncopy {n}\n")

        def settled() -> bool:
            records = _records(home.runs())
            done = [RunStatus(r["status"]).finished for by in records.values() for rs in by.values() for r in rs]
            both = all(set(by) == {"filing", "archive"} for by in records.values())
            return len(records) == len(names) and both and all(done)

        wait_for(settled, timeout=DEADLINE * 2, what="a finished record of every file in both workflows")
    finally:
        assert daemon.stop() == 0, daemon.log

    runs_by_id = {r["id"]: r for r in home.runs()}
    for name, by in _records(home.runs()).items():
        winners = [r for rs in by.values() for r in rs if r["status"] == "succeeded"]
        assert len(winners) == 1, (name, by)
        (winner,) = winners
        destination = Path(next(o["destination"] for o in winner["outputs"].values() if o.get("destination")))
        assert destination.name == name and destination.is_file()
        copies = [p for p in home.root.rglob(name) if p.is_file()]
        assert copies == [destination], copies  # moved once, never copied twice
        (loser,) = by["archive" if winner["workflow"] == "filing" else "filing"]
        assert loser["status"] == "skipped", loser
        assert (
            loser["error"]
            == f"{name} was moved by run {winner['id']} of workflow '{winner['workflow']}' to {destination}"
        )
        assert runs_by_id[winner["id"]]["workflow"] != loser["workflow"]
    assert "Traceback" not in daemon.log


@pytest.fixture
def app(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.home = home  # type: ignore[attr-defined]
    settings = Settings(data_dir=home.data, workflows=home.workflows, ollama_url=standin.url)
    made: list[App] = []

    def make(*texts: str) -> App:
        _workflows(home, *texts)
        made.append(App(settings))
        assert not made[-1].errors, made[-1].errors
        return made[-1]

    make.home = home  # type: ignore[attr-defined]
    yield make
    for one in made:
        one.close()


def test_a_workflow_that_never_saw_the_file_still_records_who_moved_it(app):
    made = app(FILING, ARCHIVE)
    home = app.home
    dropped = home.drop("invoice.txt", INVOICE)

    mover = made.trigger("filing", dropped)  # before archive's watcher ever saw the file

    assert mover.status is RunStatus.SUCCEEDED
    (record,) = made.store.history(workflow="archive")
    assert record.status is RunStatus.SKIPPED and record.input_path == str(dropped)
    assert (
        record.error
        == f"invoice.txt was moved by run {mover.id} of workflow 'filing' to {home.docs}/Invoices/invoice.txt"
    )
    assert record.sha256 == mover.sha256
    # It is the archive's outcome for that content: the file seen again is not a new run.
    again = home.drop("invoice.txt", INVOICE)
    run, created = made.intake.file(made.workflows["archive"], again)
    assert (run.id, created) == (record.id, False)


def test_a_file_moved_by_on_failure_is_recorded_in_the_other_workflow(app):
    made = app(FAILING, ARCHIVE)
    home = app.home
    dropped = home.drop("letter.txt", LETTER)
    queued, _ = made.intake.file(made.workflows["archive"], dropped)  # the archive's run waits in the queue

    failed = made.trigger("failing", dropped)

    assert failed.status is RunStatus.FAILED
    assert (home.root / "Failed" / "letter.txt").is_file()
    skipped = made.store.get(queued.id)
    assert skipped.status is RunStatus.SKIPPED
    assert (
        skipped.error
        == f"letter.txt was moved by run {failed.id} of workflow 'failing' to {home.root}/Failed/letter.txt"
    )
