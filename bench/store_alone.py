"""The run store alone, on one thread: the CPU a run's writes cost, with no daemon around them.

`python -m bench.store_alone [RUNS]` (2,000) does, per run, what the daemon does: the enqueue (in
batches of 16, as a settle pass would), the claim (then each finish claims the next), a model call
held for the next write, two intents (`save_outputs(index=False, durable=True)`, as the runner
saves them) and the finish, on a fresh SQLite file; three rounds, and prints µs of process CPU per
run for each and the best. Run it under the machine's benchmark lock, sides interleaved
(BENCHMARKS.md, "Issue 17, fourth round").
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from daemon.domain import ModelCall, NewRun, Origin, RunStatus
from daemon.store import RunStore, make_engine
from daemon.store.migrate import upgrade

BATCH = 16
OWNER = "node-1:w1"
WORKFLOWS = ["inbox", "other"]


def _news(first: int) -> list[NewRun]:
    return [
        NewRun("inbox", Origin.FILE, f"/in/file-{i}.txt", f"{i:064x}", f"{i:064x}", context={"version": f"{i}:17"})
        for i in range(first, first + BATCH)
    ]


def _call() -> ModelCall:
    return ModelCall(
        model="m", messages=[{"role": "user", "content": "classify this " * 10}], options={"temperature": 0},
        format={"type": "object"}, step_id="classify", started_at=datetime.now(UTC), answer='{"label": "invoice"}',
        prompt_tokens=10, completion_tokens=3, wall_ms=1.5, server="local", done_reason="stop",
    )  # fmt: skip


def one_round(folder: Path, runs: int) -> float:
    """µs of process CPU per run over `runs` runs."""
    engine = make_engine(f"sqlite:///{folder / 'runs.db'}")
    upgrade(engine)
    store = RunStore(engine)
    started, done, queued, run = time.process_time(), 0, 0, None
    while done < runs:
        store.enqueue_many(_news(queued))
        queued += BATCH
        run = run or store.claim(OWNER, 300, workflows=WORKFLOWS)
        while run is not None:
            store.defer_call(run.id, _call(), attempt=run.attempts)
            outputs = {"classify": {"label": "invoice", "confidence": 0.9}}
            outputs["route"] = {"intent": "move_to", "destination": f"/out/invoice/file-{run.id}.txt"}
            assert store.save_outputs(run.id, OWNER, dict(outputs), index=False, durable=True)
            outputs["write"] = {"intent": "write", "path": f"/out/notes/{run.id}.md"}
            assert store.save_outputs(run.id, OWNER, dict(outputs), index=False, durable=True)
            finished, run = store.finish_and_claim(
                run.id, OWNER, RunStatus.SUCCEEDED, outputs=outputs, lease_seconds=300, workflows=WORKFLOWS
            )
            assert finished
            done += 1
    took = time.process_time() - started
    engine.dispose()
    return took / done * 1e6


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 2000
    rounds = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as folder:
            rounds.append(one_round(Path(folder), runs))
    shown = ", ".join(f"{r:.0f}" for r in rounds)
    print(f"the store alone: µs of CPU per run, 3 rounds of {runs}: {shown}; best {min(rounds):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
