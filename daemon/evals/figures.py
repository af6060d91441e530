"""The figures of an eval, per step: agreement, invalid answers, disagreements, per label, per field, speed.

What is compared comes from the step kind (`StepKind.compare` gives a `Comparison`): a kind that
picks a label gets precision and recall per label, one that fills fields gets agreement per field.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from daemon.evals.values import NS, Answer, Case, Timing, Unusable
from daemon.steps import Comparison

NO_LABEL = "(none)"  # how a step's "no label" answer is listed among the labels


def ratio(part: int, whole: int) -> float | None:
    """part / whole rounded to 4 places; None when whole is 0."""
    return round(part / whole, 4) if whole else None


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile (q in 0..1) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 1)


class Speed:
    """Latency of answers and the speed tokens were generated at, for one model."""

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.tokens = 0
        self.seconds = 0.0

    def add(self, timing: Timing) -> None:
        if timing.wall_ms is not None:
            self.walls.append(timing.wall_ms)
        if timing.completion_tokens:
            # The server's own generation time when it says, else the wall time of the calls.
            spent = timing.eval_ns / NS if timing.eval_ns else (timing.wall_ms or 0) / 1000
            if spent > 0:
                self.tokens += timing.completion_tokens
                self.seconds += spent

    def figures(self) -> dict[str, Any]:
        rate = round(self.tokens / self.seconds, 1) if self.seconds else None
        return {"p50_ms": percentile(self.walls, 0.5), "p95_ms": percentile(self.walls, 0.95), "tokens_per_s": rate}


class Tally:
    """What one step's cases and answers add up to."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.compared = self.agreed = self.corrected = 0
        self.disagreements: list[int] = []
        self.invalid: list[int] = []
        self.not_comparable: Counter[str] = Counter()
        self.differences: list[dict[str, Any]] = []
        self.labels: dict[str, Counter[str]] = {}
        self.fields: dict[str, list[int]] = {}
        self.reference, self.candidate = Speed(), Speed()
        self.reference_models: set[str] = set()

    def exclude(self, why: Unusable) -> None:
        self.not_comparable[why.value] += 1

    def add(self, case: Case, answer: Answer, comparison: Comparison | None) -> None:
        """Count one answer: `comparison` is None when the answer was invalid."""
        self.compared += 1
        self.corrected += case.corrected
        self.reference.add(case.timing)
        self.candidate.add(answer.timing)
        self.reference_models.add(case.model)
        if comparison is None:
            self.invalid.append(case.run_id)
            self.differences.append({"run": case.run_id, "invalid": answer.invalid})
            if "label" in case.reference:  # a missed answer still counts against the label's recall
                self._label(case.reference["label"], "reference")
            return
        self.agreed += comparison.agreed
        if not comparison.agreed:
            self.disagreements.append(case.run_id)
            self.differences.append({"run": case.run_id, **_difference(comparison, case.reference, answer.output)})
        if comparison.label is not None:
            expected, got = comparison.label
            self._label(expected, "reference")
            self._label(got, "answered")
            if comparison.agreed:
                self._label(got, "agreed")
        for name, same in (comparison.fields or {}).items():
            counts = self.fields.setdefault(name, [0, 0])
            counts[0] += 1
            counts[1] += same

    def _label(self, label: str | None, what: str) -> None:
        self.labels.setdefault(NO_LABEL if label is None else label, Counter())[what] += 1

    def figures(self) -> dict[str, Any]:
        """The step's figures as stored and printed (`eval --json`)."""
        found: dict[str, Any] = {
            "kind": self.kind, "compared": self.compared, "agreed": self.agreed,
            "agreement": ratio(self.agreed, self.compared), "invalid": len(self.invalid),
            "disagreements": self.disagreements, "invalid_runs": self.invalid,
            "not_comparable": dict(self.not_comparable), "corrected_references": self.corrected,
            "reference_models": sorted(self.reference_models),
            "latency": {"reference": self.reference.figures(), "candidate": self.candidate.figures()},
        }  # fmt: skip  # (the figures read as one record)
        if self.labels:
            found["labels"] = {label: _precision_recall(c) for label, c in sorted(self.labels.items())}
        if self.fields:
            found["fields"] = {
                name: {"compared": n, "agreed": same, "agreement": ratio(same, n)}
                for name, (n, same) in self.fields.items()
            }
        found["differences"] = self.differences
        return found


def _precision_recall(counts: Counter[str]) -> dict[str, Any]:
    agreed = counts["agreed"]
    return {
        "reference": counts["reference"], "answered": counts["answered"], "agreed": agreed,
        "precision": ratio(agreed, counts["answered"]), "recall": ratio(agreed, counts["reference"]),
    }  # fmt: skip


def _difference(comparison: Comparison, reference: dict[str, Any], answer: dict[str, Any] | None) -> dict[str, Any]:
    if comparison.label is not None:
        return {"reference": comparison.label[0], "answer": comparison.label[1]}
    differing = [name for name, same in (comparison.fields or {}).items() if not same]
    return {
        "fields": {name: {"reference": reference.get(name), "answer": (answer or {}).get(name)} for name in differing}
    }


def overall(steps: dict[str, dict[str, Any]]) -> float | None:
    """Agreement over every compared answer of every step."""
    return ratio(sum(s["agreed"] for s in steps.values()), sum(s["compared"] for s in steps.values()))
