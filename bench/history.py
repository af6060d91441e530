"""Recorded history for the growth scenarios: a database that already holds N finished runs.

The rows are written by SQLite itself (one `INSERT … SELECT` over a recursive counter per table),
so a million runs take about a minute, once: the database is built as a template in the temp dir,
keyed by the schema's revision and the count, and each measurement works on a copy of it. Every
run belongs to the workflow the scenario measures (so its dedupe key, sha256 and workflow indexes
hold the whole history), has one recorded model call, outputs and search text like a real one.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import BenchHome
from daemon.store.searchindex import INDEX_PENDING

CACHE = Path(tempfile.gettempdir()) / "gristmill-bench-history"
_LAYOUT = 2  # part of a template's name: changes when what a template holds changes (2: its FTS index merged)

_RUNS = """
INSERT INTO runs (workflow, status, trigger, input_path, sha256, dedupe_key, context, outputs, attempts,
                  max_attempts, created_at, started_at, finished_at, search_name, search_text, dry_run)
WITH RECURSIVE counter(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM counter WHERE n < :count)
SELECT :workflow, CASE WHEN n % 50 = 0 THEN 'failed' ELSE 'succeeded' END, 'file',
       '/home/anna/Inbox/old-' || n || '.txt', printf('%064x', n), printf('%064x', n),
       '{"size": 90, "subfolder": ""}',
       '{"kind": {"label": "invoice", "confidence": 0.9}, "filed": {"action": "move_to", "destination": "/x"}}',
       1, 3, stamp, stamp, stamp, 'old ' || n || ' txt', 'invoice',  0
FROM (SELECT n, strftime('%Y-%m-%d %H:%M:%S.000000', 'now', '-400 days', '+' || (n * 30) || ' seconds') AS stamp
      FROM counter)
"""

_CALLS = """
INSERT INTO model_calls (run_id, step_id, attempt, model, messages, options, format, answer, prompt_tokens,
                         completion_tokens, wall_ms, started_at, server, done_reason)
SELECT id, 'kind', 1, 'llama3.2',
       '[{"role": "user", "content": "<document>Invoice: this invoice asks for payment.</document>"}]',
       '{"num_ctx": 8192}', '{"type": "object"}', '{"label": "invoice"}', 60, 6, 4.0, created_at, 'local', 'stop'
FROM runs
"""


def seeded(home: BenchHome, count: int, workflow: str) -> int:
    """Put a database with `count` finished runs of `workflow` in `home`; return the highest run id."""
    if count <= 0:
        return 0
    template = _template(count, workflow)
    home.db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, home.db)
    # On disk before the daemon starts: otherwise the kernel writes the copy back (a gigabyte at a
    # million runs) while the runs are measured, and the daemon's fsyncs wait behind it.
    with open(home.db, "rb+") as copy:
        os.fsync(copy.fileno())
    return count


def _template(count: int, workflow: str) -> Path:
    blank = BenchHome()
    _upgrade(blank)
    with sqlite3.connect(blank.db) as conn:
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    path = CACHE / f"{revision}-{workflow}-{count}-{_LAYOUT}.db"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(blank.db) as conn:
        conn.execute(_RUNS, {"count": count, "workflow": workflow})
        conn.execute(_CALLS)
        for statement in INDEX_PENDING:  # indexed, as the daemon's batches would have done run by run
            conn.execute(statement)
        # One INSERT of a million rows leaves FTS5 with large segments whose merge it has barely begun;
        # each later write does a share of it (8 pages a run here, for the first ~2,000 runs). A daemon
        # that recorded its runs one by one merged as it went: the template's index is merged now.
        conn.execute("INSERT INTO runs_fts(runs_fts) VALUES ('optimize')")
    with sqlite3.connect(blank.db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    partial = path.with_suffix(".partial")
    shutil.copyfile(blank.db, partial)
    partial.rename(path)  # whole or absent: a template cut short by Ctrl-C is never reused
    return path


def _upgrade(home: BenchHome) -> None:
    env = home.env("http://127.0.0.1:9", 1)
    subprocess.run([sys.executable, "-m", "daemon", "db", "upgrade"], env=env, check=True, capture_output=True)
