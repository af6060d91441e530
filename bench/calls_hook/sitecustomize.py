"""Loaded by every Python started with this folder on PYTHONPATH (bench/calls.py puts it there for the daemon).

With BENCH_CALLS_OUT set, a profile hook in every thread counts the functions called: Python ones
by code object, C ones by module and name. SIGUSR1 starts the count (and writes `<out>.on`, so the
bench knows it has); SIGUSR2 stops it and writes the counts to `<out>` as JSON, in one rename.
"""

import json
import os
import signal
import sys
import threading
from collections import Counter

_OUT = os.environ.get("BENCH_CALLS_OUT")

if _OUT:
    _counts: Counter = Counter()
    _counting = False

    def _hook(frame, event, arg):
        if not _counting:
            return
        if event == "call":
            code = frame.f_code
            _counts["py", code.co_filename, code.co_name, code.co_firstlineno] += 1
        elif event == "c_call":
            _counts["c", getattr(arg, "__module__", None) or "", getattr(arg, "__qualname__", repr(arg)), 0] += 1

    def _start(signum, frame):
        global _counting
        _counts.clear()
        _counting = True
        with open(f"{_OUT}.on", "w"):
            pass

    def _dump(signum, frame):
        global _counting
        _counting = False
        with open(f"{_OUT}.part", "w") as f:
            json.dump([[*key, n] for key, n in _counts.items()], f)
        os.replace(f"{_OUT}.part", _OUT)

    sys.setprofile(_hook)
    threading.setprofile(_hook)
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _dump)
