"""The start-up scan lists a large folder in bounded memory: its sorted runs wait on disk.

README, "Performance": "10,000 files of backlog in under 100 MB". tracemalloc cannot see the C libraries' own
memory, so this measures the real peak (VmHWM, resident set) of a fresh process scanning 20,000 files
whose paths are about 1 KB each: held in memory, the table would grow the process by over 30 MB.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import REPO

FILES = 20_000
SCAN = """
import sqlite3, sys
from pathlib import Path
from daemon.triggers.match import Matcher
from daemon.triggers.scan import oldest_first

def peak_kib():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))

matcher = Matcher(Path(sys.argv[1]))
before = peak_kib()
seen = 0
for found in oldest_first(matcher):
    seen += 1
print(seen, peak_kib() - before)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc to read the peak resident set")
def test_scanning_20000_long_paths_grows_the_process_by_a_few_megabytes_only(tmp_path):
    folder = tmp_path
    for level in "abc":  # a deep folder: each path is about 1 KB, so a table in memory would show
        folder = folder / (level * 250)
    folder.mkdir(parents=True)
    stem = "n" * 230
    for n in range(FILES):
        (folder / f"{stem}-{n:05}.txt").touch()

    result = subprocess.run(
        [sys.executable, "-c", SCAN, str(folder)], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen, grown_kib = map(int, result.stdout.split())
    assert seen == FILES
    # Sorted runs of about 1 MB on disk and a block of each while merging, 7.5 MB here; in memory 33 MB.
    assert grown_kib < 16 * 1024, f"the scan grew the process by {grown_kib / 1024:.1f} MB"
