"""Wake-ups: when runs become claimable, idle workers look at once instead of polling.

On PostgreSQL every node works one queue: the transaction that queues runs (enqueue, release, retry,
a lapsed lease) also sends `NOTIFY`, which PostgreSQL delivers at its commit to every node that
LISTENs; each node listens on a connection of its own, on a thread of its own, and rings one idle
worker per run. On SQLite one process works the database and its intake wakes its workers directly,
so there is nothing to listen to. `RunStore.wakeups(callback)` is the one interface for both.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, text

log = logging.getLogger("gristmill")

CHANNEL = "gristmill_runs"
MAX_RINGS = 256
"""At most this many workers are rung for one notification (a retry of thousands of runs)."""

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def announce(conn: Connection, count: int = 1) -> None:
    """In the write transaction that made `count` runs claimable: tell the listening nodes at commit."""
    if count > 0 and conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": str(count)})


class Wakeups:
    """A subscription to wake-ups; `close()` ends it. This base one (SQLite) delivers nothing."""

    def close(self) -> None:
        """Stop delivering wake-ups."""


class ListeningWakeups(Wakeups):
    """LISTEN on a dedicated autocommit connection; reconnects with backoff when the server goes away.

    `connect` opens that connection. After every (re)connect every idle worker is rung, since runs
    queued while nobody listened sent their notifications into the void. A connection that stays
    quiet is checked every `check_every` seconds, so a server that vanished without a word is noticed.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        callback: Callable[[], None],
        *,
        tick: float = 1.0,
        check_every: float = 30.0,
        backoff_max: float = 30.0,
    ) -> None:
        self._connect, self._callback = connect, callback
        self._tick, self._check_every, self._backoff_max = tick, check_every, backoff_max
        self._closed = threading.Event()
        self._listening = threading.Event()
        self.connects = 0  # LISTENs put in place so far: 1, plus one per reconnect
        self._thread = threading.Thread(target=self._run, name="wakeups", daemon=True)

    def start(self) -> ListeningWakeups:
        self._thread.start()
        return self

    def wait_listening(self, timeout: float) -> bool:
        """Whether the LISTEN is in place (within `timeout` seconds)."""
        return self._listening.wait(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        self._closed.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self._tick + 5)

    def _run(self) -> None:
        delay, failing = 0.5, False
        while not self._closed.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if failing:
                        log.info("wake-ups from the database resumed")
                    delay, failing = 0.5, False
                    self.connects += 1
                    self._listening.set()
                    self._ring(MAX_RINGS)
                    self._listen(conn)
            except Exception as exc:  # noqa: BLE001 (psycopg.Error mostly; nothing but close() may end this thread)
                self._listening.clear()
                if not failing:
                    log.warning("wake-ups from the database stopped (%s); reconnecting", _first_line(exc))
                failing = True
                self._closed.wait(delay)
                delay = min(delay * 2, self._backoff_max)

    def _listen(self, conn: Any) -> None:
        quiet_since = time.monotonic()
        while not self._closed.is_set():
            # A short timeout, so close() is answered within `tick` seconds; it costs no query.
            for note in conn.notifies(timeout=self._tick):
                quiet_since = time.monotonic()
                self._ring(_count(note.payload))
            if time.monotonic() - quiet_since >= self._check_every:
                conn.execute("SELECT 1")
                quiet_since = time.monotonic()

    def _ring(self, count: int) -> None:
        for _ in range(min(count, MAX_RINGS)):
            self._callback()


def subscribe(engine: Engine, callback: Callable[[], None]) -> Wakeups:
    """Deliver wake-ups for `engine`'s database to `callback` until the subscription is closed."""
    if engine.dialect.name != "postgresql":
        return Wakeups()
    from daemon.store.postgres import raw_connection

    return ListeningWakeups(lambda: raw_connection(engine), callback).start()


def _count(payload: str) -> int:
    try:
        return max(1, int(payload))
    except ValueError:
        return 1


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
