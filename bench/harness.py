"""Driving a real daemon process for the benchmarks: a private home, CPU and memory readings."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
READY_LINE = "gristmill ready"


@functools.cache
def polls() -> httpx.Client:
    """The one client of the bench's own polls (the stand-in's record of calls, the dashboard's first page).

    `httpx.get` makes a client for each call, and each client loads certifi's bundle into an SSL
    context: 45-50 ms of CPU here, so a poll every 20 ms kept most of a core busy beside the daemon
    being measured (1.6 ms a poll with this client's kept-alive connection).
    """
    return httpx.Client(timeout=30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu_ns(pid: int) -> dict[str, int]:
    """Each live thread's CPU time in nanoseconds (`schedstat`); empty where the kernel keeps none.

    `/proc/<pid>/stat` counts in clock ticks (10 ms): over an idle minute of 30-50 ms that is a
    fifth of the figure either way. A thread that ends takes its time with it, so a reading over a
    window holds only when every thread of the first reading is still there at the second.
    """
    times = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            times[tid] = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):  # ended meanwhile, or no schedstat in this kernel
            continue
    return times


def cpu_over(pid: int, wait: Callable[[], object]) -> float:
    """The process's CPU seconds while `wait` runs: from the threads' nanoseconds when they hold, else in ticks."""
    ticks, threads = cpu_seconds(pid), thread_cpu_ns(pid)
    wait()
    ticks, later = cpu_seconds(pid) - ticks, thread_cpu_ns(pid)
    if not threads or not threads.keys() <= later.keys():
        return ticks
    return sum(ns - threads.get(tid, 0) for tid, ns in later.items()) / 1e9


def status_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory line of a process's /proc status (VmRSS: resident now; VmHWM: its peak), in MB.

    0 once the process has none: it is exiting, or gone.
    """
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith(f"{field}:")), 0.0)


def switches(pid: int) -> int:
    """Voluntary context switches so far (a thread waited: a hand-off), summed over the live threads.

    Unlike preemptions, these hardly depend on what else runs on the machine.
    """
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue  # a thread that ended meanwhile
        total += sum(int(line.split()[1]) for line in lines if line.startswith("voluntary_ctxt_switches:"))
    return total


# Every home this process made, deleted together when the bench ends (`remove_homes`), never
# between scenarios: on an ext4 file system without a journal (this VM's), a new file's inode is
# found by stepping past every inode freed in the last minutes, a buffer-cache lookup each, so a
# scenario that had just deleted the 4,000 files of the one before it paid for them in every
# write step's new file (5.6-5.8 ms of daemon CPU a run in the two minutes after 16,000 deletions,
# 4.3-4.7 before them: BENCHMARKS.md, sixth round).
HOMES: list[Path] = []


def _new_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="gristmill-bench-"))
    HOMES.append(root)
    return root


def remove_homes() -> None:
    """Delete every home this process made (the bench's last step)."""
    while HOMES:
        shutil.rmtree(HOMES.pop(), ignore_errors=True)


@dataclass
class BenchHome:
    """A temporary HOME with an inbox, a workflows folder and a data dir; it lives until `remove_homes`."""

    root: Path = field(default_factory=_new_root)

    def __post_init__(self) -> None:
        for sub in ("Inbox", "workflows", "data", "staging"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    @property
    def inbox(self) -> Path:
        return self.root / "Inbox"

    @property
    def db(self) -> Path:
        return self.root / "data" / "gristmill.db"

    def workflow(self, name: str, text: str) -> None:
        (self.root / "workflows" / f"{name}.yaml").write_text(text)

    def env(self, ollama_url: str, concurrency: int, http: str = "off") -> dict[str, str]:
        """The daemon's environment; the dashboard is off unless a scenario measures it (`http`)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "OLLAMA_"))}
        # An installed daemon starts from the bytecode pip wrote (a checkout's, from the __pycache__
        # its first start writes); with this machine's PYTHONDONTWRITEBYTECODE=1 every launch would
        # compile the daemon's modules again: 0.15-0.2 s of each start-up measured (BENCHMARKS.md).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            HOME=str(self.root), GRISTMILL_DATA_DIR=str(self.root / "data"),
            GRISTMILL_WORKFLOWS=str(self.root / "workflows"), GRISTMILL_OLLAMA_URL=ollama_url,
            GRISTMILL_CONCURRENCY=str(concurrency), GRISTMILL_HTTP=http, PYTHONUNBUFFERED="1",
        )  # fmt: skip
        return env

    def drop(self, name: str, text: str, folder: Path | None = None) -> float:
        """Write a file elsewhere, rename it into the inbox; return the wall time it appeared."""
        staged = self.root / "staging" / name
        staged.write_text(text)
        target = (folder or self.inbox) / name
        os.rename(staged, target)
        return time.time()

    def finished(self, after: int = 0) -> int:
        """Runs with an outcome (of ids above `after`: not the seeded history), read straight from the database."""
        if not self.db.exists():
            return 0
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30) as conn:
            # `+status`: the run ids above `after`, not the status index, which walked every recorded run (80 ms
            # at a million, every 20 ms of the history scenario: most of a core taken from the daemon measured).
            row = conn.execute(
                "select count(*) from runs where id > ? and +status in ('succeeded','failed','skipped')", (after,)
            )
            return row.fetchone()[0]

    def queued(self, after: int = 0) -> int:
        """Runs recorded so far (of ids above `after`), whatever their status."""
        if not self.db.exists():
            return 0
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute("select count(*) from runs where id > ?", (after,)).fetchone()[0]

    def finish_times(self, after: int = 0) -> dict[str, float]:
        """Input file name → finished_at (epoch seconds) of its run."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30) as conn:
            rows = conn.execute("select input_path, finished_at from runs where id > ? and finished_at is not null",
                                (after,))  # fmt: skip
            return {Path(p).name: _epoch(f) for p, f in rows if p}


def _epoch(text: str) -> float:
    from datetime import UTC, datetime

    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


class Daemon:
    """`gristmill run` in a subprocess; knows when it is ready and how much it used."""

    def __init__(
        self,
        home: BenchHome,
        ollama_url: str,
        *,
        concurrency: int = 2,
        http: str = "off",
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.launched = time.monotonic()
        self.ready_at: float | None = None
        self._ready = threading.Event()
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", *args],
            env={**home.env(ollama_url, concurrency, http), **(env or {})},
            cwd=home.root, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            if READY_LINE in line and not self._ready.is_set():
                self.ready_at = time.monotonic()
                self._ready.set()

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from launch to the ready line."""
        if not self._ready.wait(timeout):
            raise RuntimeError("daemon did not get ready:\n" + "".join(self.log[-20:]))
        assert self.ready_at is not None
        return self.ready_at - self.launched

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def switches(self) -> int:
        return switches(self.proc.pid)

    def rss(self) -> float:
        return status_mb(self.proc.pid)

    def stop(self, timeout: float = 60) -> tuple[float, float]:
        """SIGTERM and wait; return (CPU seconds, peak RSS MB) of the whole life.

        The peak is the process's own high-water mark (VmHWM), read until it exits, not the ru_maxrss
        of its rusage: exec records there the peak of the memory it replaced, which after Popen's
        vfork is the bench's own (a bench holding a 100,000-file backlog's results made every daemon
        it started afterwards peak at 256 MB, a small backlog's included).
        """
        peak = status_mb(self.proc.pid, "VmHWM")
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                return usage.ru_utime + usage.ru_stime, peak
            peak = max(peak, status_mb(self.proc.pid, "VmHWM"))  # the stop's own allocations count
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("daemon did not stop within the timeout")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for the dashboard of a daemon measured)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, every: float = 0.02) -> None:
    """Poll every `every` seconds with a deadline; raise when it passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(every)
