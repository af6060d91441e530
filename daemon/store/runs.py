"""RunStore: queue, lease and record runs, one short transaction per operation.

Its reads are store/queries.py; what a file seen again becomes, store/queueing.py; forgetting old
runs, store/retention.py.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Text,
    case,
    cast,
    literal,
    select,
    update,
)  # fmt: skip
from sqlalchemy.exc import IntegrityError

from daemon import failpoints
from daemon.domain import ModelCall, NewRun, Run, RunStatus
from daemon.errors import InvalidTransition, RetryRefused, RunNotFound, StoreError
from daemon.store.db import check_database_file, reading, writing
from daemon.store.direct import HotStatements
from daemon.store.pending import PendingCalls, call_values, insert_calls
from daemon.store.queries import RunQueries, inserted, run_of, to_run
from daemon.store.queueing import enqueue_in, new_values
from daemon.store.searchindex import EndedRuns
from daemon.store.searchtext import output_words
from daemon.store.statements import (
    FRESH,
    INSERTS,
    NO_LEASE,
    OUTPUTS,
    RECORD_CALL,
    RUN_COLUMNS,
    RUNNING_RUNS,
    claim_statement,
    fenced_update,
    moving_to,
)  # fmt: skip
from daemon.store.tables import meta, runs
from daemon.store.wakeup import Wakeups, announce, subscribe

QUEUED, RUNNING, FAILED, SKIPPED = RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED, RunStatus.SKIPPED
SUCCEEDED = RunStatus.SUCCEEDED

REQUEUED_ERROR = "the worker stopped before the run finished (its lease lapsed); queued again"
_GAVE_UP = ("the worker stopped during this run ", " times (its lease lapsed each time); giving up")


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class RunStore(RunQueries):
    """Every run and model call; safe to share between threads (one connection per call)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow, *, direct: bool = True) -> None:
        """`direct=False` keeps SQLite on SQLAlchemy's Core path too (the tests compare the two paths)."""
        if engine.dialect.name not in INSERTS:
            raise StoreError(f"the run store supports SQLite and PostgreSQL, not {engine.dialect.name}")
        super().__init__(engine, clock)
        self._insert = INSERTS[engine.dialect.name]
        self._insert_ignore = self._insert(runs).on_conflict_do_nothing().returning(*RUN_COLUMNS)
        self._pending = PendingCalls()  # model calls stored with their run's next write (store/pending.py)
        # SQLite: the run's hot statements on the driver's cursor (store/direct.py); PostgreSQL: Core.
        self._hot = HotStatements(engine.dialect) if direct and engine.dialect.name == "sqlite" else None
        # SQLite: the search index takes the runs ended here in batches (store/searchindex.py).
        self._ended = EndedRuns() if engine.dialect.name == "sqlite" else None

    @property
    def engine(self) -> Engine:
        """The database engine, for the readers that live beside the store (usage, search, …)."""
        return self._engine

    # -- queueing -------------------------------------------------------------------------

    def enqueue(self, new: NewRun, *, gone: Callable[[str], bool] = lambda path: False) -> tuple[Run, bool]:
        """Queue a run; returns (run, created). Same content under another name is recorded skipped.

        Unless the content's run never got to its file and `gone(its path)` says the file is no
        longer there: then the file was renamed, and the run follows it to the new name.
        """
        return self.enqueue_many([new], gone=gone)[0]

    def enqueue_many(
        self, news: Sequence[NewRun], *, gone: Callable[[str], bool] = lambda path: False, durable: bool = False
    ) -> list[tuple[Run, bool]]:
        """`enqueue` each of `news` in order, all in one write transaction; (run, created) for each.

        One transaction for a settle pass's files instead of one each: BEGIN, COMMIT and the turn
        on the write lock cost more than a file's insert. Each file sees the ones before it (the
        same content twice in a batch is one queued run and one skipped duplicate). `durable`: on
        the disk when this returns, a power loss included (see `db.writing`), for a run that is
        acknowledged to someone outside (a hook's 202, a mail's cursor moved past it).
        """
        if not news:
            return []
        # A kill before this commits queues none of the batch: nothing was acknowledged, and its
        # files are still in their folder, where the start-up scan finds and queues them.
        with writing(self._engine, durable=durable) as conn:
            found = []
            for new in news:
                # What a key already recorded makes of this one: store/queueing.py.
                found.append(enqueue_in(conn, new, self._clock(), gone, self._insert_once))
                failpoints.hit("mid_enqueue_batch")
            # PostgreSQL: at commit, an idle worker on every node looks (once for the whole batch).
            announce(conn, sum(created and run.status is QUEUED for run, created in found))
        return found

    def claim(
        self,
        owner: str,
        lease_seconds: float,
        *,
        workflows: Collection[str] | None = None,
        run_id: int | None = None,
    ) -> Run | None:
        """Lease the oldest due queued run (or queued `run_id`, due or not) to `owner`, or None."""
        if workflows is not None and not workflows:
            return None
        with writing(self._engine, one_statement=True) as conn:
            return self._claim(conn, owner, lease_seconds, workflows, run_id)

    def _claim(
        self, conn: Connection, owner: str, lease_seconds: float, workflows: Collection[str] | None, run_id: int | None
    ) -> Run | None:
        if workflows is not None and not workflows:
            return None
        now, on_sqlite = self._clock(), conn.dialect.name == "sqlite"
        params: dict[str, Any] = {
            "b_now": now, "b_owner": owner, "b_expires": now + timedelta(seconds=lease_seconds),
        }  # fmt: skip
        if run_id is not None:
            which, params["b_id"] = "id", run_id
        elif workflows is not None:
            which, params["b_names"] = "among", list(workflows)
        else:
            which = "any"
        if self._hot is not None:
            rows = self._hot.claim(which, len(params.get("b_names", ()))).rows(conn, params)
            return run_of(rows[0]) if rows else None
        row = conn.execute(claim_statement(which, on_sqlite), params).first()
        return None if row is None else to_run(row)

    def renew(self, run_id: int, owner: str, lease_seconds: float) -> bool:
        """Extend `owner`'s lease; False when the run is no longer theirs."""
        expires = self._clock() + timedelta(seconds=lease_seconds)
        # The heartbeat's thread leaves the run's deferred calls to the worker's next write (see _fenced).
        return self._fenced(run_id, owner, None, {"lease_expires_at": expires}, with_calls=False)[0]

    def save_outputs(
        self, run_id: int, owner: str, outputs: dict[str, Any], *, index: bool = True, durable: bool = False
    ) -> bool:
        """Store the outputs so far of a running run; False when the run is no longer theirs.

        `index=False` leaves search's index of the run as it was (a file's intent is bookkeeping,
        and each index update cost more than the save itself); the run's finish indexes its outputs.
        `durable`: on the disk when this returns, a power loss included (a file's intent: see `writing`).
        """
        # The search columns are written with what they index, so search never sees a stale run.
        values = {"outputs": outputs, "search_text": output_words(outputs)} if index else {"outputs": outputs}
        return self._fenced(run_id, owner, None, values, durable=durable)[0]

    def finish(
        self,
        run_id: int,
        owner: str,
        status: RunStatus,
        *,
        outputs: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """End `owner`'s run as `status`; False when the run is no longer theirs."""
        values = self._finish_values(status, outputs, error)
        if outputs is not None:
            return self._fenced(run_id, owner, RunStatus(status), values)[0]

        def indexed(conn: Connection) -> dict[str, Any]:
            # The outputs as stored, some maybe saved unindexed (save_outputs(index=False)): search sees them now.
            stored = conn.execute(OUTPUTS, {"b_id": run_id}).scalar()
            return values | {"search_text": output_words(stored)}

        return self._fenced(run_id, owner, RunStatus(status), indexed)[0]

    def finish_and_claim(
        self,
        run_id: int,
        owner: str,
        status: RunStatus,
        *,
        outputs: dict[str, Any],
        lease_seconds: float,
        workflows: Collection[str] | None = None,
    ) -> tuple[bool, Run | None]:
        """`finish`, then `claim` for the same owner, in one write transaction instead of two.

        (Whether the run was still theirs, the run claimed next or None.) A SIGKILL before the commit
        loses both: the finished run is still running under a dead owner's lease, and is taken back
        and done again from its stored outputs, as when the finish alone was lost; the next run is
        still queued. After it, the next run is this owner's, as after a claim of its own.
        """

        def claim(conn: Connection) -> Run | None:
            return self._claim(conn, owner, lease_seconds, workflows, None)

        values = self._finish_values(status, outputs, None)
        return self._fenced(run_id, owner, RunStatus(status), values, then=claim)

    def _finish_values(self, status: RunStatus, outputs: dict[str, Any] | None, error: str | None) -> dict[str, Any]:
        if not RunStatus(status).finished:
            raise InvalidTransition(RUNNING.value, str(status))
        values: dict[str, Any] = {"status": RunStatus(status).value, "error": error, **NO_LEASE}
        values["finished_at"] = self._clock()
        if outputs is not None:
            values["outputs"], values["search_text"] = outputs, output_words(outputs)
        return values

    def release(
        self,
        run_id: int,
        owner: str,
        *,
        not_before: datetime | None,
        error: str | None = None,
        refund_attempt: bool = False,
    ) -> bool:
        """Put `owner`'s run back in the queue, due at `not_before`; False when not theirs."""
        values: dict[str, Any] = {"status": QUEUED.value, "not_before": not_before, **NO_LEASE}
        if error is not None:
            values["error"] = error
        if refund_attempt:
            values["attempts"] = case((runs.c.attempts > 0, runs.c.attempts - 1), else_=0)
        return self._fenced(run_id, owner, QUEUED, values, wakes=True)[0]

    def skip(self, run_id: int, reason: str) -> bool:
        """Mark a queued run skipped with `reason`; False when it is not queued."""
        stmt = (
            update(runs)
            .where(runs.c.id == run_id, moving_to(SKIPPED, via=QUEUED))
            .values(status=SKIPPED.value, error=reason, finished_at=self._clock(), **NO_LEASE)
        )
        with writing(self._engine, one_statement=True) as conn:
            return conn.execute(stmt).rowcount == 1

    def requeue_expired(self) -> list[int]:
        """Requeue running runs whose lease lapsed, or fail those out of attempts; their ids."""
        now = self._clock()
        lapsed = runs.c.lease_expires_at < now
        gave_up = literal(_GAVE_UP[0], Text) + cast(runs.c.attempts, Text) + literal(_GAVE_UP[1], Text)
        fail = (
            update(runs)
            .where(moving_to(FAILED, via=RUNNING), lapsed, runs.c.attempts >= runs.c.max_attempts)
            .values(status=FAILED.value, finished_at=now, error=gave_up, **NO_LEASE)
            .returning(runs.c.id)
        )
        requeue = (
            update(runs)
            .where(moving_to(QUEUED, via=RUNNING), lapsed)
            .values(status=QUEUED.value, error=REQUEUED_ERROR, **NO_LEASE)
            .returning(runs.c.id)
        )
        with writing(self._engine) as conn:
            failed = list(conn.scalars(fail))
            requeued = list(conn.scalars(requeue))
            announce(conn, len(requeued))
        return sorted(failed + requeued)

    def running(self) -> list[Run]:
        """Every running run, oldest first (a handful: one per worker of each process)."""
        with reading(self._engine) as conn:
            return [to_run(row) for row in conn.execute(RUNNING_RUNS)]

    def take_back(self, run: Run, *, error: str, refund_attempt: bool, give_up: bool) -> bool:
        """Queue again (`give_up`: fail) a running run whose owner died or whose lease lapsed.

        Fenced on the owner and the lease as read in `run`: a lease renewed since is left alone.
        """
        values: dict[str, Any] = {"error": error, **NO_LEASE}
        if give_up:
            values |= {"status": FAILED.value, "finished_at": self._clock()}
        else:
            values |= {"status": QUEUED.value, "not_before": None}
            if refund_attempt:
                values["attempts"] = case((runs.c.attempts > 0, runs.c.attempts - 1), else_=0)
        stmt = update(runs).where(
            runs.c.id == run.id, runs.c.status == RUNNING.value, runs.c.lease_owner == run.lease_owner,
            runs.c.lease_expires_at == run.lease_expires_at,
        )  # fmt: skip
        with writing(self._engine) as conn:
            taken = conn.execute(stmt.values(values)).rowcount == 1
            announce(conn, int(taken and not give_up))
            return taken

    def retry(self, run_ids: Iterable[int]) -> list[int]:
        """Queue failed or skipped runs again from scratch (their ids); queued and running ones stay.

        RunNotFound for an unknown id, RetryRefused for a succeeded run (its record is never
        overwritten); either way nothing changes.
        """
        ids = list(dict.fromkeys(int(run_id) for run_id in run_ids))
        if not ids:
            return []
        with writing(self._engine) as conn:
            found = {run.id: run for run in map(to_run, conn.execute(select(*RUN_COLUMNS).where(runs.c.id.in_(ids))))}
            missing = [run_id for run_id in ids if run_id not in found]
            if missing:
                raise RunNotFound(missing[0])
            done = [found[run_id] for run_id in ids if found[run_id].status is SUCCEEDED]
            if done:
                raise RetryRefused(done[0].id, done[0].workflow, done[0].file_now())
            stmt = update(runs).where(runs.c.id.in_(ids), moving_to(QUEUED, retry=True))
            queued = sorted(conn.scalars(stmt.values(FRESH).returning(runs.c.id)))
            announce(conn, len(queued))
            return queued

    def retry_failed(self, *, workflow: str | None = None) -> list[int]:
        """Queue every failed run (of `workflow`) again; their ids."""
        stmt = update(runs).where(moving_to(QUEUED, via=FAILED, retry=True))
        if workflow is not None:
            stmt = stmt.where(runs.c.workflow == workflow)
        with writing(self._engine) as conn:
            queued = sorted(conn.scalars(stmt.values(FRESH).returning(runs.c.id)))
            announce(conn, len(queued))
            return queued

    def wakeups(self, callback: Callable[[], None]) -> Wakeups:
        """Call `callback` once per run that becomes claimable anywhere (PostgreSQL: LISTEN/NOTIFY).

        On SQLite nothing is delivered: one process works the database and its intake wakes the
        workers itself. `close()` the subscription when done.
        """
        return subscribe(self._engine, callback)

    # -- schedules ------------------------------------------------------------------------

    def enqueue_skipped(self, new: NewRun, reason: str) -> tuple[Run, bool]:
        """Record a run that is skipped from the start (a tick that must not run); once per key."""
        now = self._clock()
        values = new_values(new, now) | {"status": SKIPPED.value, "error": reason, "finished_at": now}
        with writing(self._engine) as conn:
            return self._insert_once(conn, values)

    def check_file(self) -> None:
        """DatabaseLost when the SQLite file was deleted or replaced since it was opened."""
        check_database_file(self._engine)

    # -- model calls ----------------------------------------------------------------------

    def record_call(self, run_id: int, call: ModelCall, *, attempt: int) -> int:
        """Record one model call of a run now; returns its id."""
        values = call_values(run_id, call, attempt, self._clock())
        try:
            with writing(self._engine, one_statement=True) as conn:
                return conn.execute(RECORD_CALL, values).scalar_one()
        except IntegrityError as exc:
            raise RunNotFound(run_id) from exc

    def defer_call(self, run_id: int, call: ModelCall, *, attempt: int) -> None:
        """Record one model call of a running run with the run's next write (store/pending.py says why)."""
        self._pending.add(run_id, call_values(run_id, call, attempt, self._clock()))

    # -- meta -----------------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the small key/value table."""
        stmt = self._insert(meta).values(key=key, value=value)
        stmt = stmt.on_conflict_do_update(index_elements=[meta.c.key], set_={"value": value})
        with writing(self._engine, one_statement=True) as conn:
            conn.execute(stmt)

    # -- helpers --------------------------------------------------------------------------

    def _insert_once(self, conn: Connection, values: dict[str, Any]) -> tuple[Run, bool]:
        """Insert unless (workflow, dedupe_key) is taken; the recorded run and whether it is new."""
        key = values["dedupe_key"]
        made: Run | None = None
        if key is not None and self._hot is not None:
            # One statement for a new key (the common case): it inserts only where no run holds the key,
            # so nothing conflicts and no id is used up. (PostgreSQL would need casts; it looks first.)
            rows = self._hot.insert_absent(tuple(values)).rows(conn, values)
            made = inserted(rows[0]["id"], values) if rows else None
            found = None if made is not None else self._known(conn, values["workflow"], key)
        else:
            # Look first: a conflicting insert would still use up an id (rescans would leave gaps).
            found = None if key is None else self._known(conn, values["workflow"], key)
        if found is not None:
            return found, False
        if made is None:
            row = conn.execute(self._insert_ignore, values).first()
            made = None if row is None else to_run(row)
        if made is not None:
            return made, True
        # Lost a race with another PostgreSQL writer (SQLite's write lock rules that out).
        found = self._known(conn, values["workflow"], key)
        if found is None:
            raise StoreError(f"the run of {values['workflow']} with key {key} vanished; try again")
        return found, False

    def _fenced(
        self,
        run_id: int,
        owner: str,
        target: RunStatus | None,
        values: dict[str, Any] | Callable[[Connection], dict[str, Any]],
        *,
        wakes: bool = False,
        then: Callable[[Connection], Run | None] | None = None,
        with_calls: bool = True,
        durable: bool = False,
    ) -> tuple[bool, Run | None]:
        """Update a run only while it is running under `owner`'s lease; `wakes`: it becomes claimable.

        `values` are the columns to set, or a function that reads them in the write. The run's
        deferred model calls are stored first, in the same write (whatever the fence says, as when
        each call was recorded on its own); `then(conn)` runs last, in it too. Only the worker's
        thread writes a run's outputs and outcome, after its calls, so the order holds.
        """
        calls = self._pending.take(run_id) if with_calls else []
        try:
            # PostgreSQL runs each statement on its own unless the write wakes others (its NOTIFY
            # goes with the update); the calls then commit before the update, never after it.
            with writing(self._engine, one_statement=not wakes, durable=durable) as conn:
                self._insert_calls(conn, calls)
                done = self._update_fenced(conn, run_id, owner, target, values(conn) if callable(values) else values)
                if done and target is not None and target.finished and self._ended is not None:
                    self._ended.ended(conn, run_id)
                announce(conn, int(done and wakes))
                return done, None if then is None else then(conn)
        except IntegrityError:
            if not calls:
                raise
            # The run's row is gone (a foreign key): its calls cannot be stored, and the update finds nothing.
            return self._fenced(run_id, owner, target, values, wakes=wakes, then=then, with_calls=False)
        except BaseException:
            self._pending.put_back(run_id, calls)
            raise

    def _insert_calls(self, conn: Connection, calls: list[dict[str, Any]]) -> None:
        """Store deferred model calls' rows in the caller's transaction."""
        columns = tuple(calls[0]) if calls else ()
        if self._hot is None or any(tuple(row) != columns for row in calls):
            insert_calls(conn, calls)
        elif calls:
            self._hot.calls(columns).execute_many(conn, calls)

    def _update_fenced(
        self, conn: Connection, run_id: int, owner: str, target: RunStatus | None, values: dict[str, Any]
    ) -> bool:
        """The fenced UPDATE in the caller's transaction; whether it found the run under `owner`'s lease."""
        fence = {"b_id": run_id, "b_owner": owner}
        if self._hot is not None and not any(isinstance(v, ColumnElement) for v in values.values()):
            return self._hot.fenced(target, tuple(values)).execute(conn, {**values, **fence}).rowcount == 1
        stmt, params = fenced_update(target, values)
        return conn.execute(stmt, {**params, **fence}).rowcount == 1
