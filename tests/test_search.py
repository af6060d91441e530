"""Full-text search: the query language, the index kept in step by the store, the CLI over real runs."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.domain import NewRun, Origin, RunStatus
from daemon.errors import UsageError
from daemon.store import RunStore, make_engine
from daemon.store.migrate import downgrade, upgrade
from daemon.store.retention import forget_runs
from daemon.store.search import RunFilter, Term, fts5_match, parse_query, pg_tsquery, search
from daemon.store.searchindex import BATCH
from tests.support import INVOICE, LETTER, RECEIPT, make_home

INVOICES_WORKFLOW = """\
name: invoices
trigger:
  watch: {path: ~/Invoices, settle_seconds: 0.2}
steps:
  - id: fields
    extract:
      fields: {vendor: Name of the company, invoice_number: string, due_date: date}
"""


def test_the_query_language():
    parsed = parse_query('Invoice inv* "due date" INV-2026 ""')
    assert parsed.terms == (
        Term(("invoice",)), Term(("inv",), prefix=True), Term(("due", "date")), Term(("inv", "2026")),
    )  # fmt: skip
    assert fts5_match(parsed) == '"invoice" AND "inv"* AND "due date" AND "inv 2026"'
    assert pg_tsquery(parsed) == "('invoice') & ('inv':*) & ('due' <-> 'date') & ('inv' <-> '2026')"
    # Operators and quotes of either engine are words or nothing, never syntax.
    assert fts5_match(parse_query('NEAR(a b) OR "x')) == '"near a" AND "b" AND "or" AND "x"'
    for nothing in ("", "   ", '"" *', "*** ---"):
        with pytest.raises(UsageError, match="no words"):
            parse_query(nothing)


@pytest.fixture
def store(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade(engine)
    yield RunStore(engine)
    engine.dispose()


def _finished(store: RunStore, name: str, outputs: dict, *, workflow: str = "w", error: str | None = None) -> int:
    run, _ = store.enqueue(NewRun(workflow, Origin.FILE, f"/in/{name}", name, name))
    claimed = store.claim("me", 30, run_id=run.id)
    assert claimed is not None
    status = RunStatus.FAILED if error else RunStatus.SUCCEEDED
    store.finish(run.id, "me", status, outputs=outputs, error=error)
    return run.id


def _ids(store: RunStore, query: str, **where) -> list[int]:
    return [hit.run_id for hit in search(store.engine, query, where=RunFilter(**where))]


def test_search_sees_every_write_of_the_run(store):
    run, _ = store.enqueue(NewRun("w", Origin.FILE, "/in/acme_invoice-2026.txt", "a", "a"))
    assert _ids(store, "acme") == [run.id]  # by name as soon as it is queued
    assert _ids(store, "payment") == []
    store.claim("me", 30, run_id=run.id)
    store.save_outputs(run.id, "me", {"summary": {"text": "A bill asking for payment"}})
    assert _ids(store, "payment") == [run.id]
    store.finish(run.id, "me", RunStatus.FAILED, error="the parser gave up on page 3")
    assert _ids(store, "parser") == [run.id] and _ids(store, "payment") == [run.id]
    store.retry([run.id])  # a retry starts from scratch: the old outputs are no longer found
    assert _ids(store, "payment") == [] and _ids(store, "acme") == [run.id]
    forget_runs(store.engine, "w", datetime(2100, 1, 1, tzinfo=UTC), "older than 1d")
    assert _ids(store, "acme") == [run.id]  # pruned runs keep their one-line record


def _pending(store: RunStore) -> set[int]:
    with store.engine.connect() as conn:
        return {row[0] for row in conn.exec_driver_sql("SELECT run_id FROM runs_fts_pending")}


def _index_is_whole(path: Path) -> None:
    """FTS5's check of its index against the runs it indexes (rank 1: the content too)."""
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO runs_fts(runs_fts, rank) VALUES ('integrity-check', 1)")


def test_the_runs_a_store_ends_reach_the_index_in_batches(store, tmp_path):
    ended = [_finished(store, f"doc-{n}.txt", {"kind": {"label": f"label{n}"}}) for n in range(BATCH - 1)]
    queued, _ = store.enqueue(NewRun("w", Origin.FILE, "/in/waiting.txt", "q", "q"))
    assert _pending(store) == {*ended, queued.id}  # no index segment written run by run
    last = _finished(store, "doc-last.txt", {"kind": {"label": "lastlabel"}})
    assert _pending(store) == {queued.id}  # the batch's last end indexed them all; a queued run waits for its own
    assert _ids(store, "label3") == [ended[3]] and _ids(store, "lastlabel") == [last]
    assert _pending(store) == set()  # a search indexes what is left first: it never misses a run
    assert _ids(store, "waiting") == [queued.id]
    _index_is_whole(tmp_path / "g.db")


def test_the_index_matches_the_runs_after_any_mix_of_writes_and_searches(store, tmp_path):
    # A 'delete' given other values than those indexed corrupts an external-content index without a word:
    # every write that can change a searched column, in a random order, then FTS5's own check.
    rng, live, running = random.Random(17), [], set()
    for step in range(400):
        action = rng.choice(("queue", "queue", "claim", "save", "finish", "fail", "retry", "prune", "delete", "search"))
        if action == "queue" or not live:
            live.append(store.enqueue(NewRun("w", Origin.FILE, f"/in/doc-{step}.txt", str(step), str(step)))[0].id)
            continue
        run_id = rng.choice(live)
        if action == "claim" and store.claim("me", 30, run_id=run_id) is not None:
            running.add(run_id)
        elif action == "save" and run_id in running:
            store.save_outputs(run_id, "me", {"kind": {"label": f"saved{step}"}}, index=rng.random() < 0.5)
        elif action in ("finish", "fail") and run_id in running:
            failed = action == "fail"
            outputs = None if failed else {"kind": {"label": f"done{step}"}}
            store.finish(run_id, "me", RunStatus.FAILED if failed else RunStatus.SUCCEEDED, outputs=outputs,
                         error=f"broke at {step}" if failed else None)  # fmt: skip
            running.discard(run_id)
        elif action == "retry":
            store.retry_failed()
        elif action == "prune":
            forget_runs(store.engine, "w", datetime(2100, 1, 1, tzinfo=UTC), f"pruned at {step}")
        elif action == "delete" and run_id not in running:
            with store.engine.begin() as conn:
                conn.exec_driver_sql("DELETE FROM model_calls WHERE run_id = ?", (run_id,))
                conn.exec_driver_sql("DELETE FROM runs WHERE id = ?", (run_id,))
            live.remove(run_id)
        elif action == "search":
            search(store.engine, "doc")
    search(store.engine, "doc")
    assert _pending(store) == set()
    _index_is_whole(tmp_path / "g.db")


def test_outputs_saved_with_an_intent_are_indexed_by_the_finish(store):
    # A file's intent is bookkeeping: its save leaves the index alone; the finish indexes what was stored.
    for outcome in ("succeeded", "failed"):
        run, _ = store.enqueue(NewRun("w", Origin.FILE, f"/in/{outcome}.txt", outcome, outcome))
        store.claim("me", 30, run_id=run.id)
        label = {"kind": {"label": f"receipt{outcome}"}}
        store.save_outputs(
            run.id, "me", {**label, "filed": {"intent": "move_to", "destination": "/x/a.txt"}}, index=False
        )
        assert _ids(store, f"receipt{outcome}") == []
        if outcome == "succeeded":
            store.finish(run.id, "me", RunStatus.SUCCEEDED, outputs=label)
        else:
            store.finish(run.id, "me", RunStatus.FAILED, error="the disk is full")
        assert _ids(store, f"receipt{outcome}") == [run.id]


def test_words_prefixes_phrases_best_first_with_snippets(store):
    invoice = _finished(store, "invoice.txt", {"summary": {"text": "Please pay by the due date of the invoice"},
                                               "kind": {"label": "invoice", "confidence": 0.9}})  # fmt: skip
    letter = _finished(store, "letter.txt", {"summary": {"text": "A letter that mentions an invoice once"},
                                             "kind": {"label": "letter", "confidence": 0.9}})  # fmt: skip
    assert _ids(store, "invoice") == [invoice, letter]  # name, label and summary beat one word of a summary
    assert _ids(store, "inv*") == [invoice, letter]
    assert _ids(store, '"due date"') == [invoice]
    assert _ids(store, '"date due"') == []
    assert _ids(store, "invoice letter") == [letter]
    assert _ids(store, "invoice", workflow="other") == []
    (hit,) = search(store.engine, '"due date"')
    assert "«due date»" in hit.marked() and hit.status is RunStatus.SUCCEEDED
    assert ("due date", True) in hit.segments()


def test_metadata_digests_and_bookkeeping_are_not_words(store):
    digest = {"sha256": "ab" * 32, "chars": 120}
    run_id = _finished(store, "secret-plan.txt", {
        "summary": {"text": digest}, "kind": {"label": "letter", "confidence": 0.9},
        "_split": {"summary": {"strategy": "mapreduce"}},
    })  # fmt: skip
    assert _ids(store, "secret") == [run_id]
    assert _ids(store, "ab*") == [] and _ids(store, "mapreduce") == [] and _ids(store, "120") == []


def test_the_migration_backfills_runs_recorded_before_it(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO runs (workflow, status, trigger, input_path, created_at, outputs, error) VALUES "
            "('w', 'failed', 'file', '/in/old_report.pdf', '2026-01-01 00:00:00', "
            '\'{"fields": {"vendor": "Globex"}}\', \'no text layer\')'
        )
    upgrade(engine)
    assert [h.run_id for h in search(engine, "old report")] == [1]
    assert [h.run_id for h in search(engine, "globex")] == [1]
    assert [h.run_id for h in search(engine, "layer")] == [1]
    _index_is_whole(tmp_path / "old.db")
    downgrade(engine, "0001")
    upgrade(engine)
    assert [h.run_id for h in search(engine, "globex")] == [1]
    engine.dispose()


def test_the_batched_index_migrates_both_ways_with_every_run_indexed(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade(engine, "0007")  # each write indexed at once
    store = RunStore(engine)
    before = _finished(store, "before.txt", {"kind": {"label": "earlier"}})
    upgrade(engine)
    assert _pending(store) == set() and _ids(store, "earlier") == [before]  # the index was whole: nothing to redo
    after = _finished(RunStore(engine), "after.txt", {"kind": {"label": "later"}})
    assert _pending(store) == {after}
    downgrade(engine, "0007")  # back to writes indexed at once: the pending run is indexed on the way
    with sqlite3.connect(tmp_path / "g.db") as raw:
        assert raw.execute("SELECT rowid FROM runs_fts WHERE runs_fts MATCH 'later'").fetchall() == [(after,)]
    _index_is_whole(tmp_path / "g.db")
    engine.dispose()


def test_search_command_finds_real_runs_by_summary_label_field_and_name(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.use_example("sort-inbox.yaml")
    home.write_workflow("invoices.yaml", INVOICES_WORKFLOW)
    home.drop("acme-bill.txt", INVOICE)
    home.drop("bakery.md", RECEIPT)
    home.drop("note_from_ben.txt", LETTER)
    home.drop("scan-0042.txt", INVOICE, folder=home.root / "Invoices")
    home.cli("run", "--once", check=True)
    runs = {Path(r["input"]).name: r["id"] for r in home.runs()}

    def found(query: str, *args: str) -> list[int]:
        result = home.cli("search", query, "--json", *args, check=True)
        return [hit["id"] for hit in json.loads(result.stdout)]

    assert found("kitten") == [runs["note_from_ben.txt"]]  # a word of its summary
    assert found("receipt", "--workflow", "sort-inbox")[0] == runs["bakery.md"]  # its label, best first
    assert found("globex") == []
    assert found('"ACME Tools"', "--workflow", "invoices") == [runs["scan-0042.txt"]]  # an extracted field
    assert found("2026-12-15", "--workflow", "invoices") == [runs["scan-0042.txt"]]  # a date field
    assert found("note*") == [runs["note_from_ben.txt"]]  # a prefix of its file name
    hit = json.loads(home.cli("search", "kitten", "--json", check=True).stdout)[0]
    assert hit["workflow"] == "sort-inbox" and hit["status"] == "succeeded" and "«kitten»" in hit["snippet"]
    table = home.cli("search", "kitten", check=True).stdout
    assert "kitten" in table and str(runs["note_from_ben.txt"]) in table
    bad = home.cli("search", '""')
    assert bad.returncode == 2 and "no words" in bad.stderr and "Traceback" not in bad.stderr
