"""One node of the claim benchmark: THREADS threads claim and finish queued runs until none is left.

`python -m bench.claimer URL THREADS NAME` prints "ready" once every thread holds a connection,
waits for a line on stdin (so every node starts at once), then prints one JSON object: the runs it
claimed (`[run id, owner]`) and how long each claim took (ms).
"""

from __future__ import annotations

import json
import sys
import threading
import time

from daemon.domain import RunStatus
from daemon.store import RunStore, make_engine


def main(argv: list[str]) -> int:
    url, threads, name = argv[0], int(argv[1]), argv[2]
    store = RunStore(make_engine(url))
    claims: list[list] = []
    latencies: list[float] = []
    lock = threading.Lock()
    warm = threading.Barrier(threads + 1)
    go = threading.Event()

    def work(owner: str) -> None:
        store.next_due()  # a pooled connection of its own before the clock starts
        warm.wait()
        go.wait()
        while True:
            started = time.perf_counter()
            run = store.claim(owner, 60)
            took = (time.perf_counter() - started) * 1000
            if run is None:
                return
            with lock:
                claims.append([run.id, owner])
                latencies.append(took)
            store.finish(run.id, owner, RunStatus.SUCCEEDED)

    pool = [threading.Thread(target=work, args=(f"{name}-w{n}",)) for n in range(threads)]
    for thread in pool:
        thread.start()
    warm.wait()
    print("ready", flush=True)
    sys.stdin.readline()
    go.set()
    for thread in pool:
        thread.join()
    print(json.dumps({"claims": claims, "latencies_ms": latencies}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
