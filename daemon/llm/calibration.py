"""Learning how a model's tokenizer compares with gristmill's token estimate, from what the server reports.

The estimate (`daemon.engine.chunking.estimate_tokens`) is deliberately high: chars/3, a token per
CJK character. Every answered call reports `prompt_eval_count`, the tokens the server really
evaluated; the ratio of the two, per model, lets later estimates come closer to the truth, so long
documents are cut into fewer, larger pieces. The learnt ratio errs high (the largest recent one,
plus headroom) and never goes below `floor` of the conservative estimate.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field


@dataclass
class TokenCalibration:
    """Per-model ratio of real prompt tokens to estimated ones; thread-safe, in memory only."""

    floor: float = 0.7  # never estimate below 70 % of the conservative value
    ceiling: float = 4.0  # a ratio above this is a miscount (a cut prompt, images), not a tokenizer
    headroom: float = 1.1  # learnt ratios are raised by this much: a tokenizer varies between documents
    window: int = 20  # the most recent observations per model that count
    min_samples: int = 3  # until then the conservative estimate stands
    min_tokens: int = 64  # shorter prompts are mostly chat-template overhead: they teach nothing
    _seen: dict[str, deque[float]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def observe(self, model: str, estimated: int, evaluated: int | None, *, context: int | None = None) -> None:
        """Learn from one answered call: `estimated` tokens planned, `evaluated` reported by the server.

        Calls whose prompt filled the `context` (the server cut it, so `evaluated` is capped), calls
        without a count and tiny prompts are ignored.
        """
        if evaluated is None or evaluated <= 0 or estimated < self.min_tokens:
            return
        if context is not None and evaluated >= context:
            return
        ratio = evaluated / estimated
        if ratio > self.ceiling:
            return
        with self._lock:
            self._seen.setdefault(model, deque(maxlen=self.window)).append(ratio)

    def ratio(self, model: str) -> float:
        """The factor to apply to the conservative estimate for `model` (1.0 until learnt)."""
        with self._lock:
            seen = list(self._seen.get(model, ()))
        if len(seen) < self.min_samples:
            return 1.0
        return min(self.ceiling, max(self.floor, max(seen) * self.headroom))

    def estimate(self, model: str, conservative: int) -> int:
        """`conservative` (from `estimate_tokens`) scaled by what was learnt of `model`'s tokenizer."""
        return math.ceil(round(conservative * self.ratio(model), 6))  # 0.75 * 1.1 * 1000 is 825, not 826

    def ratios(self) -> dict[str, float]:
        """Every model's current ratio, for logs and `check`."""
        with self._lock:
            models = list(self._seen)
        return {model: self.ratio(model) for model in models}
