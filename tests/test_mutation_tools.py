"""The mutation runner's own arithmetic (tests/mutation): the random sample and its confidence interval."""

from __future__ import annotations

import pytest

from tests.mutation.plan import Sample
from tests.mutation.report import Row, wilson


def test_wilson_interval_matches_the_published_values():
    # Wilson score intervals at 95 %, as statsmodels' proportion_confint(method="wilson") gives them.
    assert wilson(24, 25) == pytest.approx((0.8046, 0.9929), abs=1e-4)
    assert wilson(25, 25) == pytest.approx((0.8668, 1.0), abs=1e-4)
    assert wilson(0, 25) == pytest.approx((0.0, 0.1332), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)  # nothing tested: nothing known


def test_a_sample_is_the_same_for_the_same_mutants_in_any_order_and_all_of_a_small_module():
    names = [f"m.x_f__mutmut_{n}" for n in range(1, 200)]
    drawn = Sample(25, 19).of(names)
    assert len(drawn) == len(set(drawn)) == 25 and set(drawn) <= set(names)
    assert Sample(25, 19).of(list(reversed(names))) == drawn
    assert Sample(25, 20).of(names) != drawn
    assert Sample(25, 19).of(names[:20]) == sorted(names[:20])


def test_a_sampled_row_shows_its_interval_and_a_full_one_its_rate():
    sampled = Row("m.py", mutants=25, population=200, killed=24, survived=["a"], equivalent=[], not_run=0)
    assert sampled.sampled and sampled.kill_rate == 0.96
    assert sampled.interval(without_equivalent=False) == pytest.approx((0.8046, 0.9929), abs=1e-4)
    full = Row("m.py", mutants=20, population=20, killed=18, survived=["a"], equivalent=["b"], not_run=0)
    assert not full.sampled and full.score == pytest.approx(18 / 19)
    assert full.interval(without_equivalent=True) == (full.score, full.score)
