"""A model call alone, on one thread: the CPU the daemon's call costs beside the official client's.

`python -m bench.call_alone [CALLS]` (1,500) makes the overhead scenario's classify call to the
instant stand-in, in turn, through the daemon's Ollama backend (`OllamaBackend.chat`: the
request, the stream, the answer's counters) and through the official `ollama` client (`chat`,
streamed, its parts joined); three rounds of each, and prints µs of process CPU per call and
the ratio of the medians. Run it under the machine's benchmark lock (BENCHMARKS.md, seventh round).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import ollama

from bench.floor import SCHEMA, official_answer
from bench.scenarios import DOC, standin
from daemon.domain import ModelCall
from daemon.llm.ollama_backend import OllamaBackend
from daemon.settings import ServerConfig

MESSAGES = [{"role": "user", "content": f"Classify this document.\n<document>{DOC.format(n=1)}</document>"}]


def _per_call(call: Callable[[], object], calls: int) -> float:
    """µs of process CPU per call over `calls` calls."""
    started = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - started) / calls * 1e6


def main(argv: list[str]) -> int:
    calls = int(argv[0]) if argv else 1500
    with standin("--slots", "4") as url:
        backend = OllamaBackend(ServerConfig(name="local", kind="ollama", url=url), timeout=300)
        client = ollama.Client(host=url, timeout=300)

        def ours() -> object:
            return backend.chat(ModelCall(model="llama3.2", messages=MESSAGES, options={}, format=SCHEMA)).answer

        def theirs() -> object:
            return official_answer(client, MESSAGES)

        assert ours() == theirs()  # the same answer, and each path's connection made before timing
        rounds: dict[str, list[float]] = {"daemon": [], "official client": []}
        for _ in range(3):
            rounds["daemon"].append(_per_call(ours, calls))
            rounds["official client"].append(_per_call(theirs, calls))
        backend.close()
    for name, took in rounds.items():
        print(f"{name}: µs of CPU per call, 3 rounds of {calls}: {', '.join(f'{t:.0f}' for t in took)}")
    ratio = statistics.median(rounds["daemon"]) / statistics.median(rounds["official client"])
    print(f"daemon ÷ official client (medians): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
