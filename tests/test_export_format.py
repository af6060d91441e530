"""The export's chat shape: what gristmill checks before writing a line, and the rules trainers apply."""

from __future__ import annotations

import pytest

from daemon.export.chat import line, shape_problem
from daemon.export.dataset import share_of, split
from tests.chat_format import TemplateRefused, is_conversational, render

GOOD = [
    {"role": "system", "content": "You are careful."},
    {"role": "user", "content": "Classify this."},
    {"role": "assistant", "content": '{"label": "invoice", "confidence": 1.0}'},
]


def test_a_good_chat_passes_both_checks():
    assert shape_problem(GOOD) is None and shape_problem(GOOD[1:]) is None
    assert is_conversational({"messages": GOOD}) and render(GOOD).endswith("</s>")
    assert line(GOOD).startswith('{"messages": [')


@pytest.mark.parametrize(
    "messages",
    [
        GOOD[:2],  # ends with the user
        [GOOD[0], GOOD[2]],  # no user
        [GOOD[1], GOOD[1], GOOD[2]],  # two users in a row
        [GOOD[1], GOOD[2], GOOD[2]],  # two answers in a row
    ],
)
def test_bad_turns_are_refused_by_gristmill_and_by_a_strict_template(messages):
    assert shape_problem(messages) is not None
    if messages[-1]["role"] == "assistant":  # a template only refuses turns out of order
        with pytest.raises(TemplateRefused):
            render(messages)


@pytest.mark.parametrize(
    "messages",
    [[], "text", [{"role": "user"}], [{"role": "tool", "content": "x"}, GOOD[2]], [{**GOOD[1], "images": []}]],
)
def test_malformed_messages_are_refused(messages):
    assert shape_problem(messages) is not None


def test_the_split_is_by_run_stable_and_never_leaves_a_set_empty():
    runs = list(range(1, 201))
    valid = split(runs, 0.1)
    assert valid == split(list(reversed(runs)), 0.1)  # the same every time, whatever the order
    assert 10 <= len(valid) <= 30 and all(share_of(r) < 0.1 for r in valid)
    assert split([7], 0.1) == set() and len(split([3, 4], 0.1)) == 1  # one run trains; two: one each
    assert split(runs, 0.0) == set()
