"""The five benchmark scenarios; each returns a dict of figures, baselines measured in the same run."""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import ollama

from bench import dashboard
from bench.harness import BenchHome, Daemon, cpu_over, polls, wait_until
from bench.history import seeded as history_db

CLASSIFY_WORKFLOW = """\
name: {name}
trigger:
  watch: {{path: ~/{folder}, settle_seconds: 0}}
steps:
  - id: kind
    classify: {{labels: {{invoice: A bill that asks for payment, letter: Correspondence}}}}
  - id: filed
    route:
      by: kind
      routes: {{invoice: {{move_to: ~/Out/{name}/invoices}}}}
      default: {{move_to: ~/Out/{name}/other}}
  - write: {{path: "~/Out/{name}/notes/{{{{ file.stem }}}}.txt", content: "{{{{ kind.label }}}}"}}
"""

SCHEDULE_WORKFLOW = """\
name: {name}
trigger:
  schedule: {{every: 1h, catch_up: false}}
steps:
  - prompt: Say hello.
"""

DOC = "Invoice {n}: this invoice asks for payment of {n}.00 EUR by the end of the month.\n"


@dataclass
class Sizes:
    """How big each scenario is; `quick` makes a smoke run."""

    overhead_files: int = 2000
    model_files: int = 400
    backlog_files: int = 10_000  # the large backlog (`--backlog-files 100000` for the issue-17 figure)
    backlog_small: int = 1000  # the runs each of the two windows times
    # The small backlog's files: more than its two windows and the walk's lead over the workers (up to
    # 768 runs, pacing.py), so its walk still queues beside both windows, as the large backlog's does
    # (with twice the window, 2,000 files, it ended early in the second: BENCHMARKS.md, fourteenth round).
    backlog_small_files: int = 3000
    history_runs: tuple[int, ...] = (0, 100_000, 1_000_000)  # recorded runs before the overhead scenario
    idle_seconds: float = 60.0
    startups: int = 5
    dashboard_runs: int = 100_000
    page_requests: int = 9
    scale_files: int = 480  # per node count; 8 s of work at the ideal 60 runs/s of 3 nodes
    claim_files: int = 1000  # instant model, 4 nodes × 4 workers
    claim_runs: int = 4000  # bare claims, 4 processes × 4 threads

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            overhead_files=20, model_files=8, backlog_files=30, backlog_small=10, backlog_small_files=20,
            history_runs=(0, 500), idle_seconds=2.0, startups=2, dashboard_runs=500, page_requests=2,
            scale_files=24, claim_files=40, claim_runs=200,
        )  # fmt: skip  # (the sizes read as one table)


@contextmanager
def standin(*args: str) -> Iterator[str]:
    """The Ollama stand-in in its own process; yields its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.standin", "--port", "0", *args],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    url = line.strip().rsplit(" ", 1)[-1]
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _direct_calls(url: str | list[str], calls: int, threads: int) -> float:
    """Baseline: the same classify calls straight from the ollama client (threads spread over the URLs); calls/s."""
    schema = {"type": "object", "properties": {"label": {"enum": ["invoice", "letter"]}}}
    urls = [url] if isinstance(url, str) else url
    clients = [ollama.Client(host=u, timeout=60) for u in urls]
    counter = iter(range(calls))
    lock = threading.Lock()

    def work(client: ollama.Client) -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            content = f"<document>\n{DOC.format(n=n)}</document>"
            client.chat(model="llama3.2", messages=[{"role": "user", "content": content}], format=schema)

    start = time.perf_counter()
    pool = [threading.Thread(target=work, args=(clients[i % len(clients)],)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return calls / (time.perf_counter() - start)


def _pipeline(
    url: str, files: int, concurrency: int, env: dict[str, str] | None = None, history: int = 0
) -> dict[str, float]:
    home = BenchHome()
    home.workflow("bench", CLASSIFY_WORKFLOW.format(name="bench", folder="Inbox"))
    seeded = history_db(home, history, "bench")
    daemon = Daemon(home, url, concurrency=concurrency, env=env)
    daemon.wait_ready(timeout=300)
    cpu_ready, switched = daemon.cpu(), daemon.switches()
    dropped = {f"doc-{n:05d}.txt": home.drop(f"doc-{n:05d}.txt", DOC.format(n=n)) for n in range(files)}
    wait_until(lambda: home.finished(seeded) >= files, 600, f"{files} runs")
    cpu_done, switched = daemon.cpu(), daemon.switches() - switched
    daemon.stop()
    finished = home.finish_times(seeded)
    latencies = sorted(finished[name] - at for name, at in dropped.items())
    elapsed = max(finished.values()) - min(dropped.values())
    return {
        "runs_per_s": files / elapsed,
        "cpu_ms_per_run": (cpu_done - cpu_ready) * 1000 / files,
        "switches_per_run": switched / files,  # thread hand-offs: waits on a lock, a queue, the GIL
        "latency_p50_ms": _pct(latencies, 50) * 1000,
        "latency_p95_ms": _pct(latencies, 95) * 1000,
        "latency_p99_ms": _pct(latencies, 99) * 1000,
    }


def overhead(sizes: Sizes) -> dict[str, float]:
    """Stand-in with no latency: what the daemon itself costs per run."""
    with standin("--slots", "4") as url:
        result = _pipeline(url, sizes.overhead_files, concurrency=2)
        result["baseline_direct_calls_per_s"] = _direct_calls(url, sizes.overhead_files, threads=2)
    result["ratio_to_direct"] = result["runs_per_s"] / result["baseline_direct_calls_per_s"]
    return result


def history(sizes: Sizes) -> dict[str, float]:
    """The overhead scenario on databases that already hold 0, 100,000 and 1,000,000 runs: cost per run flat?"""
    result: dict[str, float] = {}
    with standin("--slots", "4") as url:
        for count in sizes.history_runs:
            got = _pipeline(url, sizes.overhead_files, concurrency=2, history=count)
            result[f"runs_per_s_{count}"] = got["runs_per_s"]
            result[f"cpu_ms_per_run_{count}"] = got["cpu_ms_per_run"]
        result["baseline_direct_calls_per_s"] = _direct_calls(url, sizes.overhead_files, threads=2)
    first, last = sizes.history_runs[0], sizes.history_runs[-1]
    result["runs_ratio_largest_to_empty"] = result[f"runs_per_s_{last}"] / result[f"runs_per_s_{first}"]
    result["cpu_ratio_largest_to_empty"] = result[f"cpu_ms_per_run_{last}"] / result[f"cpu_ms_per_run_{first}"]
    return result


def model_bound(sizes: Sizes) -> dict[str, float]:
    """200 ms per answer, 4 slots, 4 workers: how busy the daemon keeps the model."""
    with standin("--latency", "0.2", "--slots", "4") as url:
        result = _pipeline(url, sizes.model_files, concurrency=4)
        result["baseline_direct_calls_per_s"] = _direct_calls(url, sizes.model_files, threads=4)
    result["ideal_runs_per_s"] = 4 / 0.2
    result["utilisation"] = result["runs_per_s"] / result["ideal_runs_per_s"]
    return result


def two_hosts(sizes: Sizes) -> dict[str, float]:
    """Two Ollama hosts (stand-ins in their own processes), 200 ms per answer, 4 slots each: both kept busy."""
    with standin("--latency", "0.2", "--slots", "4") as first, standin("--latency", "0.2", "--slots", "4") as second:
        servers = {"a": {"url": first, "slots": 4}, "b": {"url": second, "slots": 4}}
        files = sizes.model_files * 2
        result = _pipeline(first, files, concurrency=1, env={"GRISTMILL_SERVERS": json.dumps(servers)})
        result["share_on_a"] = _calls(first) / (_calls(first) + _calls(second))
        result["baseline_direct_calls_per_s"] = _direct_calls([first, second], files, threads=8)
    result["ideal_runs_per_s"] = 8 / 0.2
    result["utilisation"] = result["runs_per_s"] / result["ideal_runs_per_s"]
    return result


def _calls(url: str) -> int:
    recorded = polls().get(f"{url}/_standin/requests").json()
    return sum(r["path"] == "/api/chat" for r in recorded)


# The backlog scenario's repeats, counted: the host's pace drifts within a repeat (minutes), and with
# the small backlog always measured first the drift fell on the large one alone (BENCHMARKS.md,
# fourteenth round); the two sizes now take turns going first.
_backlog_turns = itertools.count()


def backlog(sizes: Sizes) -> dict[str, float]:
    """A small and a large backlog present at start-up: first model call, runs/s in two windows, memory.

    Each backlog is timed over its first `backlog_small` runs (from the first model call) and over the
    next as many; in both sizes the start-up walk still queues files, paced, beside both windows. The
    first window says what a large folder costs to start on, the second whether a run costs more with
    a large backlog behind it.
    """
    timed, small_files = sizes.backlog_small, max(sizes.backlog_small_files, 2 * sizes.backlog_small)
    files = max(sizes.backlog_files, small_files)  # both windows need their runs
    large_first = next(_backlog_turns) % 2 == 1
    if large_first:
        large, small = _backlog(files, timed), _backlog(small_files, timed)
    else:
        small, large = _backlog(small_files, timed), _backlog(files, timed)
    result = {f"{key}_small": value for key, value in small.items()} | large
    result["files"], result["files_small"], result["large_first"] = files, small_files, int(large_first)
    result["runs_ratio_large_to_small"] = large["runs_per_s"] / small["runs_per_s"]
    result["runs_ratio_next_large_to_small"] = large["runs_per_s_next"] / small["runs_per_s_next"]
    return result


def _backlog(files: int, timed: int) -> dict[str, float]:
    """`files` in the watched folder before launch; runs/s over the first `timed` runs and the next `timed`.

    The windows are cut at the runs' recorded finish times (the first from the first model call).
    Then it waits until every file is queued (the scan is done) before stopping, so the peak RSS
    covers the whole scan.
    """
    home = BenchHome()
    home.workflow("bench", CLASSIFY_WORKFLOW.format(name="bench", folder="Inbox"))
    for n in range(files):
        (home.inbox / f"doc-{n:06d}.txt").write_text(DOC.format(n=n))
    # A backlog is files that were already there: on a journaled file system, 100,000 files written
    # just before the launch were written back during the windows and took a quarter of the large
    # backlog's second window (BENCHMARKS.md, nineteenth round).
    os.sync()
    with standin("--slots", "4") as url:
        launched = time.time()
        daemon = Daemon(home, url)
        # The stand-in records the call's time: polling less often does not make the figure coarser.
        wait_until(lambda: _first_call(url) is not None, 300, "the first model call", every=0.05)
        first = _first_call(url)
        # Polled gently: a count over a large table every 20 ms would take CPU from the daemon.
        wait_until(lambda: home.finished() >= 2 * timed, 3600, f"{2 * timed} runs of the backlog", every=0.1)
        wait_until(lambda: home.queued() >= files, 3600, "the whole backlog to be queued", every=0.5)
        queued = time.time() - launched
        _, peak = daemon.stop(timeout=120)
    ends = sorted(home.finish_times().values())
    return {
        "first_call_s": first - launched, "runs_per_s": timed / (ends[timed - 1] - first),
        "runs_per_s_next": timed / (ends[2 * timed - 1] - ends[timed - 1]), "all_queued_s": queued,
        "peak_rss_mb": peak,
    }  # fmt: skip


def _first_call(url: str) -> float | None:
    recorded = polls().get(f"{url}/_standin/requests").json()
    times = [r["time"] for r in recorded if r["path"] == "/api/chat"]
    return min(times) if times else None


def idle(sizes: Sizes) -> dict[str, float]:
    """Three watch and two schedule workflows, nothing happening: CPU and memory."""
    with standin() as url:
        daemon = Daemon(idle_home(), url)
        daemon.wait_ready()
        return idle_window(daemon, sizes)


def idle_home() -> BenchHome:
    """A home with the idle scenario's three watch and two schedule workflows."""
    home = BenchHome()
    for n in range(3):
        (home.root / f"In{n}").mkdir()
        home.workflow(f"watch-{n}", CLASSIFY_WORKFLOW.format(name=f"watch-{n}", folder=f"In{n}"))
    for n in range(2):
        home.workflow(f"tick-{n}", SCHEDULE_WORKFLOW.format(name=f"tick-{n}"))
    return home


def idle_window(daemon: Daemon, sizes: Sizes) -> dict[str, float]:
    """The ready daemon's CPU over the idle window and its memory at the end; then it is stopped."""
    time.sleep(1.0)  # let start-up work settle before the idle window
    used = cpu_over(daemon.proc.pid, lambda: time.sleep(sizes.idle_seconds))
    rss = daemon.rss()
    daemon.stop()
    return {"cpu_s_per_min": used * 60 / sizes.idle_seconds, "rss_mb": rss, "window_s": sizes.idle_seconds}


def startup(sizes: Sizes) -> dict[str, float]:
    """Launch to ready, against the bare interpreter's start as the baseline."""
    home = BenchHome()
    home.workflow("bench", CLASSIFY_WORKFLOW.format(name="bench", folder="Inbox"))
    times, bare = [], []
    with standin() as url:
        for _ in range(sizes.startups):
            daemon = Daemon(home, url)
            times.append(daemon.wait_ready())
            daemon.stop()
            start = time.monotonic()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare.append(time.monotonic() - start)
    ready, base = statistics.median(times), statistics.median(bare)
    return {"ready_s": ready, "baseline_python_s": base, "ratio_to_python": ready / base}


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, round(pct / 100 * len(values)) - 1))
    return values[index]


def scale(sizes: Sizes) -> dict[str, float]:
    """Several nodes on one PostgreSQL database (bench/scale.py)."""
    from bench.scale import scale as several_nodes

    return several_nodes(sizes)


SCENARIOS = {
    "overhead": overhead,
    "model_bound": model_bound,
    "two_hosts": two_hosts,
    "backlog": backlog,
    "history": history,
    "idle": idle,
    "startup": startup,
    "dashboard_idle": dashboard.dashboard_idle,
    "dashboard_startup": dashboard.dashboard_startup,
    "dashboard_pages": dashboard.dashboard_pages,
    "scale": scale,
}
