"""The parts of an eval that need no server: which calls asked the question, agreement, the figures."""

from __future__ import annotations

from daemon.domain import ModelCall
from daemon.evals.figures import Tally, percentile
from daemon.evals.questions import question, unusable
from daemon.evals.values import Answer, Case, Timing, Unusable
from daemon.steps import Comparison
from daemon.steps.agreement import public, same

ASK = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]


def call(messages, *, error=None, format=None) -> ModelCall:
    return ModelCall(model="m", messages=messages, format=format, error=error, wall_ms=10.0, completion_tokens=5)


def test_the_question_is_the_last_answered_call_or_the_one_its_reask_followed():
    summary = call([{"role": "user", "content": "summarise part 1"}])
    first = call(ASK, format={})
    reask = call([*ASK, {"role": "assistant", "content": "bananas"}, {"role": "user", "content": "again"}])
    assert question([summary, first]) == [first]
    assert question([summary, first, reask]) == [first, reask]
    assert question([first, call(ASK, error="refused")]) == [first]
    assert question([call(ASK, error="down")]) == []
    assert Timing.of(question([first, reask])).calls == 2


def test_recorded_messages_that_cannot_be_sent_again():
    assert unusable(ASK) is None
    assert unusable([{"role": "user", "content": {"sha256": "ab", "chars": 3}}]) is Unusable.METADATA
    assert unusable([{"role": "user", "content": "x", "images": [{"image": "ab", "bytes": 9}]}]) is Unusable.IMAGES


def test_values_agree_when_they_mean_the_same():
    assert same("ACME  Tools", "acme tools") and same(1234.5, 1234.50) and same(3, 3.0) and same(None, None)
    assert not same("ACME", "ACME (weak)") and not same(None, "") and not same(True, 1) and not same(1.0, 1.1)
    assert same(["a", "B"], ["A", "b"]) and not same(["a"], ["a", "b"])
    assert public({"total": 1, "_text": {"total": "1"}}) == {"total": 1}


def _case(run_id: int, label: str | None) -> Case:
    timing = Timing(calls=1, wall_ms=100.0 + run_id, completion_tokens=10, eval_ns=500_000_000)
    return Case(run_id, "kind", ASK, {}, "ref", {"label": label, "confidence": 0.9}, False, timing)


def test_precision_recall_and_invalid_answers_in_the_figures():
    tally = Tally("classify")
    pairs = [(1, "a", "a"), (2, "a", "b"), (3, "b", "b"), (4, "b", None)]
    for run_id, expected, got in pairs:
        case = _case(run_id, expected)
        output = None if got is None else {"label": got}
        answer = Answer(run_id, "kind", "cand", output, "unusable" if got is None else None, Timing(1, 20.0, 4, None))
        comparison = None if got is None else Comparison(expected == got, label=(expected, got))
        tally.add(case, answer, comparison)
    tally.exclude(Unusable.METADATA)
    f = tally.figures()
    assert (f["compared"], f["agreed"], f["agreement"], f["invalid"]) == (4, 2, 0.5, 1)
    assert f["disagreements"] == [2] and f["invalid_runs"] == [4]
    assert f["labels"]["a"] == {"reference": 2, "answered": 1, "agreed": 1, "precision": 1.0, "recall": 0.5}
    assert f["labels"]["b"] == {"reference": 2, "answered": 2, "agreed": 1, "precision": 0.5, "recall": 0.5}
    assert f["not_comparable"] == {Unusable.METADATA.value: 1}
    assert f["latency"]["reference"] == {"p50_ms": 102.0, "p95_ms": 104.0, "tokens_per_s": 20.0}
    assert f["latency"]["candidate"]["tokens_per_s"] == 200.0  # wall time when the server gave none
    assert f["differences"][0] == {"run": 2, "reference": "a", "answer": "b"}


def test_percentiles_are_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([float(v) for v in range(1, 101)], 0.95) == 95.0
