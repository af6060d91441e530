"""SQLite's search index, brought up to date in batches rather than at every write of a run.

FTS5 writes a segment of its index at each commit that touches it, however few the rows: that
was half the pages of a run's last transaction. Migration 0008's triggers only note a run in
`runs_fts_pending` when it is queued or its searched columns change; its words reach the index
here, many runs in one statement. A search catches up first (`catch_up`), so it never misses a
run; the daemon catches up the runs it ended every `BATCH` of them (`EndedRuns`), so a search
rarely has much to do. A crash loses nothing: the pending rows are written with the runs'.
PostgreSQL's GIN index follows each row by itself, so there is nothing to do there.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from daemon.store.db import is_sqlite, reading, writing

BATCH = 32  # ended runs a catch-up indexes in the daemon: a segment of 5–6 pages for them all, not each

_COLUMNS = "search_name, search_text, error"
_ANY_PENDING = text("SELECT EXISTS (SELECT 1 FROM runs_fts_pending)")
_INDEX = (
    f"INSERT INTO runs_fts(rowid, {_COLUMNS}) SELECT r.id, r.search_name, r.search_text, r.error "
    "FROM runs_fts_pending p JOIN runs r ON r.id = p.run_id"
)
# Every pending run indexed, in a write transaction (also what bench/history.py does on bare sqlite3).
INDEX_PENDING = (_INDEX, "DELETE FROM runs_fts_pending")


def catch_up(engine: Engine) -> None:
    """Index every pending run (a search's first step); no write when none is pending."""
    if not is_sqlite(engine):
        return
    with reading(engine) as conn:  # no run added or changed since the last catch-up: no write lock taken
        if not conn.execute(_ANY_PENDING).scalar():
            return
    with writing(engine) as conn:
        for sql in INDEX_PENDING:
            conn.exec_driver_sql(sql)


class EndedRuns:
    """The runs this process ended since its last catch-up; every `BATCH`th end indexes them all.

    Called in each run's finishing write transaction, so under the store's one writer at a time.
    Queued and running runs stay pending: they are indexed once, when they end, not now and again then.
    """

    def __init__(self) -> None:
        self._ids: list[int] = []

    def ended(self, conn: Connection, run_id: int) -> None:
        self._ids.append(run_id)
        if len(self._ids) < BATCH:
            return
        ids, self._ids = ",".join(map(str, self._ids)), []  # integers from the store: nothing to quote
        conn.exec_driver_sql(f"{_INDEX} WHERE p.run_id IN ({ids})")
        conn.exec_driver_sql(f"DELETE FROM runs_fts_pending WHERE run_id IN ({ids})")
