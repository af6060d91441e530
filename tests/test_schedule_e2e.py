"""End to end: a real `gristmill run` daemon firing `every: 1s`, and a digest over input.runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from daemon.store import RunStore
from daemon.store.db import make_engine
from daemon.store.migrate import upgrade
from tests.support import INVOICE, LETTER, RECEIPT, REPO, make_home, wait_for

EVERY_SECOND = """name: heartbeat
trigger:
  schedule: {every: 1s}
steps:
  - write:
      path: "~/ticks/{{ run.id }}.txt"
      content: "{{ now.isoformat() }}"
"""


@pytest.fixture
def home(tmp_path, standin):
    return make_home(tmp_path, standin.url)


def _daemon(home) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "daemon", "run"], env=home.env, cwd=home.root,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _stop(daemon: subprocess.Popen) -> str:
    daemon.send_signal(signal.SIGTERM)
    _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    return err


def _store(home) -> RunStore:
    # Migrating here too (safe beside the daemon's own upgrade) means the tables exist before
    # the first query, however slowly the daemon starts.
    engine = make_engine(f"sqlite:///{home.data / 'gristmill.db'}")
    upgrade(engine)
    return RunStore(engine)


def _tick(run) -> datetime:
    return datetime.strptime(run.dedupe_key, "tick:%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_every_second_records_each_elapsed_tick_exactly_once(home):
    home.write_workflow("heartbeat.yaml", EVERY_SECOND)
    daemon = _daemon(home)
    try:
        store = _store(home)
        wait_for(lambda: len(store.history(workflow="heartbeat", limit=100)) >= 6, timeout=60, what="six ticks")
        stopped_at = datetime.now(UTC)
    finally:
        _stop(daemon)

    runs = store.history(workflow="heartbeat", limit=10_000)
    ticks = sorted(_tick(r) for r in runs)
    assert len(ticks) == len(set(ticks)), "a tick ran twice"
    assert ticks[-1] - ticks[0] == timedelta(seconds=len(ticks) - 1), f"a tick is missing: {ticks}"
    assert stopped_at - ticks[-1] < timedelta(seconds=3)  # it kept ticking up to the stop (±1 at the edge)
    assert all(r.trigger.value == "schedule" and r.status.finished for r in runs)
    written = sorted((home.root / "ticks").iterdir())
    assert len(written) == sum(r.status.value == "succeeded" for r in runs)


def test_a_restart_does_not_run_a_tick_twice_and_catches_up_once(home):
    home.write_workflow("heartbeat.yaml", EVERY_SECOND)
    daemon = _daemon(home)
    try:
        store = _store(home)
        wait_for(lambda: len(store.history(workflow="heartbeat", limit=100)) >= 2, timeout=60, what="two ticks")
    finally:
        _stop(daemon)
    before = {r.dedupe_key for r in store.history(workflow="heartbeat", limit=10_000)}
    down_since = datetime.now(UTC)
    wait_for(lambda: datetime.now(UTC) - down_since > timedelta(seconds=3), what="three missed ticks")

    once = home.cli("run", "--once")

    assert once.returncode == 0, once.stderr
    after = store.history(workflow="heartbeat", limit=10_000)
    new = [r for r in after if r.dedupe_key not in before]
    assert len(after) == len({r.dedupe_key for r in after})
    assert len(new) == 1, [r.dedupe_key for r in new]  # the ticks missed while down: one run
    assert new[0].status.value == "succeeded"
    assert new[0].context.get("coalesced_ticks", 0) + new[0].context.get("missed_ticks", 0) >= 2


def _digest_every_second() -> str:
    shipped = (REPO / "workflows" / "daily-digest.yaml").read_text()
    assert 'cron: "0 7 * * *"' in shipped
    return shipped.replace('cron: "0 7 * * *"', "every: 1s")


def test_a_digest_over_an_inbox_workflow_names_every_filed_document(home):
    home.use_example("sort-inbox.yaml")
    home.write_workflow("daily-digest.yaml", _digest_every_second())
    names = {"invoice.txt": INVOICE, "receipt.md": RECEIPT, "letter.txt": LETTER}
    for name, text in names.items():
        home.drop(name, text)
    digests = home.docs / "Digests"

    def digested() -> str:
        files = sorted(digests.iterdir()) if digests.exists() else []
        text = "\n".join(p.read_text() for p in files)
        return text if all(f"- {name}:" in text for name in names) else ""

    daemon = _daemon(home)
    try:
        text = wait_for(digested, timeout=60, what="digests naming every filed document")
    finally:
        _stop(daemon)

    assert f"- invoice.txt: invoice → {home.docs / 'Invoices' / 'invoice.txt'}" in text
    assert f"- letter.txt: letter → {home.docs / 'Letters' / 'letter.txt'}" in text
    runs = [r for r in home.runs("--workflow", "daily-digest")]
    assert {r["status"] for r in runs} <= {"succeeded", "skipped"}
    reasons = [r["error"] for r in runs if r["status"] == "skipped"]
    assert all(why == "nothing new" or why.endswith("overlap: skip") for why in reasons), reasons


def test_the_shipped_digest_triggered_by_hand_then_nothing_new(home):
    home.use_example("sort-inbox.yaml")
    home.use_example("daily-digest.yaml")
    home.drop("invoice.txt", INVOICE)
    home.drop("letter.txt", LETTER)
    home.cli("run", "--once", check=True)

    first = json.loads(home.cli("trigger", "daily-digest", "--json", check=True).stdout)
    again = json.loads(home.cli("trigger", "daily-digest", "--json", check=True).stdout)

    assert first["status"] == "succeeded"
    digest = (home.docs / "Digests").iterdir().__next__().read_text()
    assert digest.startswith("# Digest of ")
    assert "invoice.txt" in first["outputs"]["digest"]["text"]  # the model read the names first
    assert "- invoice.txt: invoice →" in digest and "- letter.txt: letter →" in digest
    assert (again["status"], again["error"]) == ("skipped", "nothing new")


def test_workflows_shows_the_next_fire_time_in_the_workflows_time_zone(home):
    home.write_workflow(
        "morning.yaml",
        "name: morning\ntrigger:\n  schedule: {cron: '0 7 * * *', timezone: America/New_York}\n"
        "steps:\n  - write: {path: '~/m.md', content: x}\n",
    )
    rows = json.loads(home.cli("workflows", "--json", check=True).stdout)
    shown = datetime.strptime(rows[0]["next"][:19], "%Y-%m-%d %H:%M:%S")
    now_there = datetime.now(ZoneInfo("America/New_York")).replace(tzinfo=None)
    assert rows[0]["next"].endswith((" EST", " EDT")) and shown.hour == 7
    assert timedelta(0) < shown - now_there <= timedelta(hours=24)
