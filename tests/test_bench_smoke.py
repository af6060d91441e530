"""The benchmark harness still runs end to end (tiny sizes; figures are not judged here)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from contextlib import closing
from pathlib import Path

from bench.scenarios import Sizes
from daemon.triggers.handover import QUEUE_BATCH
from daemon.triggers.pacing import PACE_AHEAD
from tests.support import REPO


def _bench(only: str, out, *more: str) -> subprocess.CompletedProcess:
    """The bench, its temporary files (the scenarios' homes among them) in `out`/tmp."""
    (out / "tmp").mkdir()
    argv = [sys.executable, "-m", "bench", "--quick", "--repeat", "1", "--only", only, "--out", str(out), *more]
    env = {**os.environ, "TMPDIR": str(out / "tmp")}
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)


def _homes(out) -> list[str]:
    made = (out / "tmp").glob("gristmill-bench-*")
    return sorted(path.name for path in made if path.name != "gristmill-bench-history")


def test_bench_quick_run_writes_json_and_markdown(tmp_path):
    result = _bench("overhead,startup", tmp_path)

    assert result.returncode == 0, result.stderr
    assert _homes(tmp_path) == []  # deleted at the end, not one by one after each scenario
    document = json.loads((tmp_path / "latest.json").read_text())
    overhead = document["results"]["overhead"]["median"]
    assert overhead["runs_per_s"] > 0 and overhead["cpu_ms_per_run"] > 0
    assert overhead["baseline_direct_calls_per_s"] > 0
    assert document["results"]["startup"]["median"]["ready_s"] > 0
    assert set(document["machine"]["strays"]) <= {"trio"}
    table = (tmp_path / "latest.md").read_text()
    assert "| overhead | runs/s end to end |" in table


def test_the_report_names_packages_installed_here_that_slow_every_start():
    from bench.report import markdown

    document = {"repeat": 1, "when": "now", "sizes": {}, "results": {}, "machine": {"cpus": 2, "python": "3.11"}}
    line = "Installed here, not on a fresh install, imported at every start: trio."

    assert line not in markdown(document)  # a document from before the field, or none installed
    document["machine"]["strays"] = ["trio"]
    assert line in markdown(document).splitlines()


def test_bench_growth_scenarios_run_with_a_seeded_history_and_two_backlogs(tmp_path):
    result = _bench("history,backlog", tmp_path, "--keep-homes")

    assert result.returncode == 0, result.stderr
    kept = result.stderr.split("homes kept: ")[1].split()
    assert len(kept) == 5  # the template's, a history size's two, the two backlogs'
    assert sorted(os.path.basename(home) for home in kept) == _homes(tmp_path)
    results = json.loads((tmp_path / "latest.json").read_text())["results"]
    history, backlog = results["history"]["median"], results["backlog"]["median"]
    assert history["runs_per_s_0"] > 0 and history["runs_per_s_500"] > 0 and history["cpu_ms_per_run_500"] > 0
    assert backlog["files"] == 30 and backlog["files_small"] == 20  # two windows of 10 runs
    assert backlog["first_call_s"] > 0 and backlog["peak_rss_mb"] > 0 and backlog["runs_ratio_large_to_small"] > 0
    assert backlog["runs_per_s_next"] > 0 and backlog["runs_ratio_next_large_to_small"] > 0
    table = (tmp_path / "latest.md").read_text()
    assert "| history | runs/s, 500 runs recorded before |" in table


def test_the_two_backlogs_take_turns_going_first(tmp_path):
    # The host's pace drifts within a repeat; with the small backlog always first it fell on the large one.
    result = _bench("backlog", tmp_path, "--keep-homes", "--repeat", "2")

    assert result.returncode == 0, result.stderr
    runs = json.loads((tmp_path / "latest.json").read_text())["results"]["backlog"]["runs"]
    assert [run["large_first"] for run in runs] == [0, 1]
    homes = sorted((Path(home) for home in result.stderr.split("homes kept: ")[1].split()), key=_made_at)
    assert [_runs_recorded(home) for home in homes] == [20, 30, 30, 20]  # in the order the homes were made


def test_the_small_backlogs_walk_outlasts_both_windows():
    # Its walk keeps at most PACE_AHEAD + QUEUE_BATCH runs queued ahead of the workers: with fewer files
    # than the two windows and that lead, it ends inside the second window and the large backlog's runs,
    # their walk beside them, are compared with runs that have none (BENCHMARKS.md, fourteenth round).
    sizes = Sizes()

    assert sizes.backlog_small_files > 2 * sizes.backlog_small + PACE_AHEAD + QUEUE_BATCH
    assert sizes.backlog_files > sizes.backlog_small_files


def _made_at(home: Path) -> int:
    return (home / "workflows").stat().st_mtime_ns


def _runs_recorded(home: Path) -> int:
    with closing(sqlite3.connect(home / "data" / "gristmill.db")) as conn:
        return conn.execute("select count(*) from runs").fetchone()[0]


def test_the_store_alone_loop_runs():
    argv = [sys.executable, "-m", "bench.store_alone", "40"]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("the store alone: µs of CPU per run, 3 rounds of 40: ")


def test_the_call_alone_measures_the_daemons_call_beside_the_official_clients():
    argv = [sys.executable, "-m", "bench.call_alone", "20"]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["daemon", "official client", "daemon ÷ official client (medians)"]
    assert all(len(line.split(": ")[2].split(", ")) == 3 for line in lines[:2])
    assert float(lines[2].rsplit(" ", 1)[1]) > 0


def test_the_floor_measures_each_part_and_all_together():
    argv = [sys.executable, "-m", "bench.floor", "20"]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=180)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "the floor: µs of CPU per run, 3 rounds of 20:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["model", "db", "files", "db+files+model"]
    assert all(len(line.split(":")[1].split(",")) == 3 for line in lines[1:])


def test_two_trees_run_side_by_side_and_their_ratio_is_printed():
    argv = [sys.executable, "-m", "bench.pairs", str(REPO), str(REPO), "--pairs", "1", "--files", "12", "--warm", "2"]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    pair, medians = result.stdout.splitlines()
    assert pair.startswith("pair 1: A ") and "; B " in pair and "B ÷ A: CPU " in pair
    assert medians.startswith("median B ÷ A over 1 pairs: CPU a run ")
    cpu, rate = (float(part.rsplit(" ", 1)[1]) for part in medians.split(": ", 1)[1].split(", "))
    assert cpu > 0 and rate > 0


def test_a_daemons_peak_memory_is_its_own_not_the_benchs(tmp_path):
    """Exec records in a child's ru_maxrss the peak of the process it was started from: not read."""
    from bench.harness import BenchHome, Daemon

    ballast = b"\1" * (300 << 20)  # every page written: this process's peak passes 300 MB
    del ballast
    home = BenchHome(tmp_path)
    daemon = Daemon(home, "http://127.0.0.1:9")  # no model server: it starts all the same
    daemon.wait_ready(timeout=120)
    _, peak = daemon.stop()

    assert 20 < peak < 250, peak  # the daemon's own tens of MB, not this process's 300


def test_the_call_count_counts_the_daemons_calls_over_the_runs_asked(tmp_path):
    kept = tmp_path / "calls.json"
    argv = [sys.executable, "-m", "bench.calls", "--runs", "6", "--warm", "2", "--out", str(kept), "--top", "5"]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Python calls a run: ")
    document = json.loads(kept.read_text())
    assert document["runs"] == 6
    called = {(kind, os.path.basename(where), name): n for kind, where, name, _, n in document["counts"]}
    # One run, one execution of it: counted in the daemon's worker threads, not before the count began.
    assert called["py", "runner.py", "execute"] == 6
    assert called["c", "posix", "link"] >= 6  # each run's move (and write) links a file in place
    assert list(tmp_path.glob("gristmill-bench-*")) == []  # its home deleted at the end


def test_the_call_count_report_puts_two_counts_side_by_side():
    from bench.calls import report

    before = Counter({("py", "/x/site-packages/pathlib2/a.py", "f", 1): 20, ("c", "posix", "stat", 0): 10})
    after = Counter({("py", "/x/site-packages/pathlib2/a.py", "f", 1): 10, ("c", "posix", "stat", 0): 10})

    text = report(after, 10, before, top=5)

    assert text.splitlines()[0] == "Python calls a run: 2 → 1; C calls a run: 1 → 1 (10 runs)"
    assert "       2.0       1.0  pathlib2" in text  # by module: the library's top package
    assert "       1.0       1.0  C posix stat" in text


_SPINNER = """
import sys, threading, time
def spin(seconds, go):
    go.wait()
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
for line in sys.stdin:  # "S here": spin S seconds; "S thread": on a thread that ends, started before "go"
    seconds, how = line.split()
    go = threading.Event()
    before = time.process_time()
    if how == "thread":
        worker = threading.Thread(target=spin, args=(float(seconds), go))
        worker.start()
        print("started", flush=True)
        sys.stdin.readline()
        go.set()
        worker.join()
    else:
        go.set()
        spin(float(seconds), go)
    print(time.process_time() - before, flush=True)
"""


def _spinner() -> subprocess.Popen:
    argv = [sys.executable, "-c", _SPINNER]
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    _ask(child, "0 here")  # its first answer: the interpreter is up
    return child


def _ask(child: subprocess.Popen, line: str) -> str:
    child.stdin.write(line + "\n")
    child.stdin.flush()
    return child.stdout.readline()


def test_cpu_over_a_window_is_read_to_the_microsecond_not_in_ticks():
    from bench.harness import cpu_over

    child = _spinner()
    try:
        answer = []
        read = cpu_over(child.pid, lambda: answer.append(float(_ask(child, "0.125 here"))))
    finally:
        child.kill()
        child.wait()

    assert abs(read - answer[0]) < 0.003, (read, answer)  # clock ticks are 10 ms apart


def test_a_window_in_which_a_thread_ended_is_read_in_ticks():
    """The ended thread's time left the threads' readings with it; the process's own count keeps it."""
    from bench.harness import CLOCK_TICKS, cpu_over, wait_until

    child = _spinner()
    tasks = f"/proc/{child.pid}/task"
    try:
        assert _ask(child, "0.05 thread") == "started\n"  # the thread is there, waiting for "go"
        threads = len(os.listdir(tasks))

        def spin_and_end() -> None:
            _ask(child, "go")
            # Python's join returns before the kernel has reaped the thread: wait until it has.
            wait_until(lambda: len(os.listdir(tasks)) < threads, 30, "the thread's end", every=0.01)

        read = cpu_over(child.pid, spin_and_end)
    finally:
        child.kill()
        child.wait()

    assert read > 0
    assert abs(read * CLOCK_TICKS - round(read * CLOCK_TICKS)) < 1e-6, read  # whole ticks


def _closed_connections_to(port: int) -> int:
    """Connections to 127.0.0.1:`port` this machine closed from its side lately (TIME_WAIT, /proc/net/tcp)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(row.split()[2] == f"0100007F:{port:04X}" and row.split()[3] == "06" for row in rows)


def test_the_benchs_polls_of_the_stand_in_keep_one_connection():
    """`httpx.get` made a client per poll, each loading certifi's bundle: 45-50 ms of CPU beside the daemon measured."""
    from bench.scenarios import _first_call, standin

    with standin() as url:
        port = int(url.rsplit(":", 1)[1])
        before = _closed_connections_to(port)  # an earlier server's, on the same port number, may linger
        for _ in range(5):
            assert _first_call(url) is None  # no model call yet: each poll asks the stand-in again
        after = _closed_connections_to(port)

    assert after <= before  # a client per poll closes a connection per poll
