"""The fork server of one module: pytest and its test files imported once, one forked child per mutant.

Started by `tests.mutation.__main__` inside `mutants/` (so `daemon` and `tests` are the mutated copy):
`python -m tests.mutation.worker TIMEOUT JOBS FILE…`. It reads mutant names, one a line, until end of
input (an empty line is the clean run, `fail` mutmut's check that the trampolines are reached), runs
up to JOBS children at once, and writes one JSON line per finished mutant: `{"name", "code", "seconds"}`,
`code` being pytest's exit status, or 36 when the child ran past TIMEOUT seconds.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator

TIMED_OUT = 36  # mutmut's code for "timeout"
# -n 0: no xdist workers (pyproject's addopts ask for two); each mutant runs in the forked child itself.
PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "--no-header", "-p", "no:randomly", "-n", "0"]


def main(argv: list[str]) -> None:
    timeout, jobs, files = float(argv[0]), int(argv[1]), argv[2:]
    names = [line.rstrip("\n") for line in sys.stdin]
    report = os.fdopen(os.dup(1), "w", buffering=1)
    _quiet()
    import pytest

    # Imports conftest and the test modules once, before forking.
    pytest.main(["--collect-only", "-q", "-n", "0", *files])
    for name, code, seconds in _run_all(names, files, timeout, jobs):
        report.write(json.dumps({"name": name, "code": code, "seconds": round(seconds, 2)}) + "\n")


def _quiet() -> None:
    """pytest's output of this process and its children goes nowhere; results travel on the saved stdout."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)


def _run_all(names: list[str], files: list[str], timeout: float, jobs: int) -> Iterator[tuple[str, int, float]]:
    waiting = list(reversed(names))
    running: dict[int, tuple[str, float]] = {}  # pid → (mutant, started)
    parent = os.getppid()
    while waiting or running:
        if os.getppid() != parent:  # the runner was stopped: so are we, with everything we started
            for pid in running:
                _stop(pid)
            raise SystemExit(1)
        while waiting and len(running) < jobs:
            name = waiting.pop()
            running[_fork(name, files)] = (name, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            name, started = running.pop(pid)
            _kill_group(pid)  # daemons a failed test left behind
            yield name, os.waitstatus_to_exitcode(status), time.monotonic() - started
            continue
        for pid, (name, started) in list(running.items()):
            if time.monotonic() - started > timeout:
                _stop(pid)
                del running[pid]
                yield name, TIMED_OUT, time.monotonic() - started
        time.sleep(0.05)


def _fork(name: str, files: list[str]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 3
    try:
        os.setpgid(0, 0)  # its own process group: a timeout kills the daemons its tests started too
        from mutmut.mutation.trampoline import set_mutant_under_test

        set_mutant_under_test(name)  # also in the environment, which the tests' subprocesses inherit
        import pytest

        code = int(pytest.main([*files, *PYTEST_ARGS]))
    finally:
        os._exit(code)


def _stop(pid: int) -> None:
    """Interrupt a child (pytest then runs the tests' cleanups: daemons stopped, mounts undone), then kill."""
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
        time.sleep(0.1)
    _kill_group(pid)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # already reaped above


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
