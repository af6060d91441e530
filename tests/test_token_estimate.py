"""Token estimates: dense scripts count a token per character; calibration learns a model's ratio."""

from __future__ import annotations

import threading

import pytest

from daemon.engine.chunking import estimate_tokens
from daemon.llm.calibration import TokenCalibration


@pytest.mark.parametrize(
    "text",
    ["株" * 1000, "株式会社トヨタ自動車" * 100, "สวัสดีครับผม" * 100, "한국어" * 333 + "문"],
)
def test_cjk_and_other_dense_scripts_count_a_token_per_character(text):
    assert len(text) == 1000 or len(text) == 1200
    assert estimate_tokens(text) >= len(text)


def test_latin_text_is_estimated_as_before():
    assert estimate_tokens("a" * 1000) == 334
    assert estimate_tokens("word " * 200) == 334  # 200 words * 4/3
    assert estimate_tokens("") == 0


def test_mixed_text_counts_both_parts():
    mixed = "株式会社トヨタ is a car maker"  # 7 dense characters and 4 words
    assert estimate_tokens(mixed) == 7 + max(-(-(len(mixed) - 7) // 3), -(-4 * 4 // 3))


def test_nothing_is_learnt_before_enough_calls():
    calibration = TokenCalibration()
    calibration.observe("llama3.2", 1000, 700)
    calibration.observe("llama3.2", 1000, 700)
    assert calibration.ratio("llama3.2") == 1.0 and calibration.estimate("llama3.2", 900) == 900


def test_a_ratio_is_learnt_per_model_erring_high():
    calibration = TokenCalibration()
    for evaluated in (700, 720, 750):
        calibration.observe("llama3.2", 1000, evaluated)
    for _ in range(3):
        calibration.observe("qwen3", 1000, 1500)
    assert calibration.ratio("llama3.2") == pytest.approx(0.75 * 1.1)  # the largest recent, plus headroom
    assert calibration.estimate("llama3.2", 1000) == 825
    assert calibration.estimate("qwen3", 1000) == 1650  # a tokenizer that needs more than estimated
    assert calibration.ratio("unknown") == 1.0
    assert set(calibration.ratios()) == {"llama3.2", "qwen3"}


def test_never_below_the_floor_of_the_conservative_estimate():
    calibration = TokenCalibration(floor=0.7)
    for _ in range(5):
        calibration.observe("tiny-tokens", 1000, 100)
    assert calibration.ratio("tiny-tokens") == 0.7 and calibration.estimate("tiny-tokens", 1000) == 700


def test_cut_prompts_missing_counts_tiny_prompts_and_miscounts_teach_nothing():
    calibration = TokenCalibration()
    for _ in range(5):
        calibration.observe("m", 10_000, 2048, context=2048)  # the server cut it: the count is capped
        calibration.observe("m", 1000, None)
        calibration.observe("m", 1000, 0)
        calibration.observe("m", 20, 5)  # chat-template overhead
        calibration.observe("m", 100, 5000)  # images or a miscount, not a tokenizer
    assert calibration.ratio("m") == 1.0


def test_only_recent_calls_count():
    calibration = TokenCalibration(window=3)
    for evaluated in (1400, 800, 800, 800):
        calibration.observe("m", 1000, evaluated)
    assert calibration.ratio("m") == pytest.approx(0.8 * 1.1)


def test_observations_from_many_threads_are_all_kept():
    calibration = TokenCalibration(window=10_000)
    threads = [
        threading.Thread(target=lambda: [calibration.observe("m", 1000, 800) for _ in range(500)]) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calibration._seen["m"]) == 4000


def test_splitting_text_without_spaces_keeps_every_character_and_each_piece_fits():
    from daemon.engine.chunking import split_text

    for text, budget in (("株" * 5000, 1000), ("QUJD" * 3000 + " tail", 300)):
        pieces = split_text(text, budget)
        assert "".join(pieces).replace(" ", "").replace("\n", "") == text.replace(" ", "")
        assert all(estimate_tokens(piece) <= budget for piece in pieces)
