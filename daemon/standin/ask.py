"""One model call as both APIs hand it to the server, and the computed work they render."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from daemon.standin.brain import Answer

UNLIMITED = -1  # an Ask's max_tokens when the request lifted every limit (num_predict <= 0)


@dataclass(frozen=True)
class Ask:
    """One model call, whichever API asked: what the brain and the load tracker need."""

    model: str
    messages: list[dict[str, Any]]
    format: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    think: bool | None = None
    max_tokens: int | None = None  # None: the server's default_max_tokens; UNLIMITED: none at all
    keep_alive: float = 300.0


@dataclass(frozen=True)
class Work:
    """A computed answer, the seconds it is meant to take, the load it paid for, and its quirks."""

    answer: Answer
    latency: float
    load_seconds: float
    quirks: frozenset[str]
    begun: float  # when the answer's latency began: its slot was taken (time.monotonic)

    def left(self, extra: float = 0.0) -> float:
        """Seconds still to wait for the answer to have taken its latency (plus `extra`) since `begun`.

        The latency is the model's whole time, from its slot to its answer: the stand-in's own work
        on the request (computing the answer, rendering it) is part of it, not added on top.
        """
        return self.begun + self.latency + extra - time.monotonic()

    def pacing(self, chunks: int, stall: float, at: int) -> dict[str, Any]:
        """`Exchange.stream`'s timing for an answer in `chunks` pieces, stalled `stall` s before chunk `at`."""
        return {"delay": self.latency / chunks, "stall": (at, stall) if stall else None, "start": self.begun}
