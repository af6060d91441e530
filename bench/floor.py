"""The floor: what a run's unavoidable work costs on one thread, with no daemon around it.

`python -m bench.floor [RUNS]` (1,500) does, per run of the overhead scenario, only what no daemon
built on this project's libraries can skip: the official `ollama` client's streamed classify call
to the stand-in, five write transactions on the bare `sqlite3` module (WAL, `synchronous=NORMAL`:
the enqueue, the claim, two intents, the finish) and the move and the write with their fsyncs.
Three rounds of each part alone and of all of them together; prints µs of process CPU per run.
Issue 17 asks the daemon for 3 ms a run: this says what the parts cost before the daemon adds
anything (BENCHMARKS.md, "The floor"). Run it under the machine's benchmark lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import ollama

from bench.scenarios import DOC, standin

SCHEMA = {"type": "object", "properties": {"label": {"enum": ["invoice", "letter"]}}, "required": ["label"]}
PARTS = ("model", "db", "files")


def official_answer(client: ollama.Client, messages: list[dict[str, str]]) -> str:
    """The overhead scenario's classify call through the official client, streamed: its answer's text."""
    parts = client.chat(model="llama3.2", messages=messages, format=SCHEMA, stream=True, options={"num_ctx": 8192})
    return "".join(part.message.content or "" for part in parts)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(db: sqlite3.Connection, sql: str, params: tuple) -> int:
    db.execute("BEGIN IMMEDIATE")
    row_id = db.execute(sql, params).lastrowid
    db.execute("COMMIT")
    return row_id


class Floor:
    """One fresh folder and database; `run(n)` does run n's parts and returns its process CPU."""

    def __init__(self, root: Path, client: ollama.Client, parts: set[str]) -> None:
        self.root, self.client, self.parts = root, client, parts
        for name in ("in", "out", "notes"):
            (root / name).mkdir()
        self.db = sqlite3.connect(root / "runs.db", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, path TEXT, sha TEXT, status TEXT, outputs TEXT)")

    def run(self, n: int) -> float:
        source = self.root / "in" / f"doc-{n}.txt"
        source.write_text(DOC.format(n=n))
        started = time.process_time()
        db, files = "db" in self.parts, "files" in self.parts
        data = source.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if db:
            run_id = _commit(self.db, "INSERT INTO runs (path, sha, status, outputs) VALUES (?, ?, 'queued', '{}')",
                             (str(source), sha))  # fmt: skip
            _commit(self.db, "UPDATE runs SET status = 'running' WHERE id = ?", (run_id,))
        label = self._label(data.decode()) if "model" in self.parts else "invoice"
        outputs = {"kind": {"label": label}, "filed": {"intent": "move_to", "destination": f"out/doc-{n}.txt"}}
        if db:
            _commit(self.db, "UPDATE runs SET outputs = ? WHERE id = ?", (json.dumps(outputs), run_id))
        if files:
            moved = self.root / "out" / source.name
            os.link(source, moved)
            _fsync_folder(moved.parent)
            os.unlink(source)
            _fsync_folder(source.parent)
        outputs["note"] = {"intent": "write", "requested": f"notes/doc-{n}.txt"}
        if db:
            _commit(self.db, "UPDATE runs SET outputs = ? WHERE id = ?", (json.dumps(outputs), run_id))
        if files:
            self._write(self.root / "notes" / f"doc-{n}.txt", label.encode())
        if db:
            finish = "UPDATE runs SET status = 'succeeded', outputs = ? WHERE id = ?"
            _commit(self.db, finish, (json.dumps(outputs), run_id))
        return time.process_time() - started

    def _label(self, text: str) -> str:
        return json.loads(official_answer(self.client, [{"role": "user", "content": text}]))["label"]

    def _write(self, path: Path, data: bytes) -> None:
        temporary = path.with_name(f".tmp-{path.name}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(temporary, path)
        os.unlink(temporary)
        _fsync_folder(path.parent)


def measure(client: ollama.Client, parts: set[str], runs: int, root: str) -> float:
    """µs of process CPU per run over `runs` runs of `parts`, in a new folder under `root`."""
    floor = Floor(Path(tempfile.mkdtemp(dir=root)), client, parts)
    try:
        return sum(floor.run(n) for n in range(runs)) / runs * 1e6
    finally:
        floor.db.close()


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 1500
    # The folders are deleted together at the end, not after each measurement: see bench/harness.py, HOMES.
    with standin("--slots", "4") as url, tempfile.TemporaryDirectory() as root:
        client = ollama.Client(host=url, timeout=60)
        measure(client, {"model"}, min(runs, 200), root)  # the connection made and the code warm
        sets = [{part} for part in PARTS] + [set(PARTS)]
        found: dict[str, list[float]] = {"+".join(sorted(s)): [] for s in sets}
        for _ in range(3):
            for parts in sets:
                found["+".join(sorted(parts))].append(measure(client, parts, runs, root))
    print(f"the floor: µs of CPU per run, 3 rounds of {runs}:")
    for name, rounds in found.items():
        print(f"  {name}: {', '.join(f'{r:.0f}' for r in rounds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
