"""Shadow mode with the real daemon: candidates answer beside live runs in spare slots; `eval --shadow` asks nothing."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa

from daemon.store.db import make_engine
from daemon.store.migrate import upgrade
from tests.eval_support import WEAK, WORKFLOW, drop_all, is_hard, run_ids
from tests.support import make_home, wait_for
from tests.test_crash import DEADLINE, Daemon, finished

SHADOWED = WORKFLOW + f"shadow: {{model: {WEAK}}}\n"


def shadow_rows(home) -> int:
    engine = make_engine(f"sqlite:///{home.data / 'gristmill.db'}")
    try:
        upgrade(engine)
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM shadow_calls")).scalar_one()
    finally:
        engine.dispose()


def models_asked(standin) -> list[str]:
    return [r["body"]["model"] for r in standin.recorded()]


def test_shadow_answers_beside_live_runs_and_eval_shadow_asks_nothing(tmp_path, standin):
    standin.config.update({"weak": [WEAK]})
    home = make_home(tmp_path, standin.url)
    home.write_workflow("mail-room.yaml", SHADOWED)
    daemon = Daemon(home).start()
    try:
        drop_all(home, range(8))
        wait_for(lambda: finished(home, 8), timeout=DEADLINE, what="8 runs")
        wait_for(lambda: shadow_rows(home) == 16, timeout=DEADLINE, what="a shadow answer per run and step")
    finally:
        assert daemon.stop() == 0, daemon.log
    asked = models_asked(standin)
    assert asked.count(WEAK) == 16 and asked.count("llama3.2") == 16

    result = json.loads(home.cli("eval", "mail-room", "--shadow", "--json", check=True).stdout)
    assert models_asked(standin) == asked  # compared from the record: no new request
    assert result["model"] == WEAK and result["source"] == "shadow"
    ids = run_ids(home)
    hard = sorted(ids[i] for i in range(8) if is_hard(i))
    for step_id in ("kind", "fields"):
        figures = result["steps"][step_id]
        assert figures["compared"] == 8 and figures["disagreements"] == hard
        assert figures["latency"]["candidate"]["p50_ms"] is not None

    # Shadow calls are not the run's calls: show, costs and the files are as without shadow mode.
    shown = json.loads(home.cli("show", str(ids[0]), "--json", check=True).stdout)
    assert {call["model"] for call in shown["calls"]} == {"llama3.2"}
    costs = json.loads(home.cli("costs", "--json", check=True).stdout)
    assert [row["model"] for row in costs["rows"]] == ["llama3.2"] and costs["totals"]["calls"] == 16
    assert len([p for p in home.docs.rglob("*") if p.is_file()]) == 8


def test_shadow_calls_wait_until_no_run_needs_the_slot(tmp_path, standin):
    """One slot, a backlog of four: every candidate request comes after the last run's calls ended."""
    standin.config.update({"weak": [WEAK], "latency": 0.3})
    home = make_home(tmp_path, standin.url)
    home.extra_env["GRISTMILL_CONCURRENCY"] = "1"
    home.write_workflow("mail-room.yaml", SHADOWED)
    drop_all(home, range(4))  # queued together by the start-up scan
    daemon = Daemon(home).start()
    try:
        wait_for(lambda: shadow_rows(home) == 8, timeout=DEADLINE, what="the shadow answers")
    finally:
        assert daemon.stop() == 0, daemon.log
    requests = standin.recorded()
    real = [r["time"] for r in requests if r["body"]["model"] == "llama3.2"]
    shadow = [r["time"] for r in requests if r["body"]["model"] == WEAK]
    assert len(real) == 8 and len(shadow) == 8
    assert min(shadow) >= max(real) + 0.3  # the last real call had been answered
    last_finish = max(datetime.fromisoformat(r["finished_at"]) for r in home.runs())
    assert last_finish.timestamp() <= min(shadow)
