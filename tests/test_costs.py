"""`gristmill costs`: tokens and model time per workflow and model, priced from the shipped table."""

from __future__ import annotations

import json

import pytest

from daemon.costs import PER, price_table, shipped_prices
from tests.support import INVOICE, LETTER, RECEIPT, make_home


@pytest.fixture
def home(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.use_example("sort-inbox.yaml")
    for name, text in (("invoice.txt", INVOICE), ("receipt.txt", RECEIPT), ("letter.txt", LETTER)):
        home.drop(name, text)
    home.cli("run", "--once", check=True)
    return home


def test_costs_add_up_the_recorded_calls_and_price_them(home):
    report = json.loads(home.cli("costs", "--json", check=True).stdout)

    calls = [c for run in home.runs() for c in _calls(home, run["id"])]
    (row,) = report["rows"]
    assert (row["workflow"], row["model"], row["runs"], row["calls"]) == ("sort-inbox", "llama3.2", 3, len(calls))
    tokens_in = sum(c["prompt_tokens"] for c in calls)
    tokens_out = sum(c["completion_tokens"] for c in calls)
    assert (row["tokens_in"], row["tokens_out"]) == (tokens_in, tokens_out) and tokens_in > 0
    assert row["model_seconds"] == pytest.approx(sum(c["total_duration_ns"] for c in calls) / 1e9, abs=0.01)
    gpt = shipped_prices()["gpt-4.1"]
    assert row["paid_usd"]["gpt-4.1"] == pytest.approx((tokens_in * gpt.input + tokens_out * gpt.output) / PER)
    assert set(report["prices"]) == {"gpt-4o-mini", "gpt-4.1", "claude-sonnet-4"}
    assert report["prices"]["gpt-4.1"]["source"].startswith("https://") and report["prices"]["gpt-4.1"]["as_of"]
    assert report["totals"]["tokens_in"] == tokens_in


def test_settings_add_a_price_row_and_choose_what_to_compare_with(home):
    (home.root / "gristmill.toml").write_text(
        'cost_compare = ["my-cloud"]\n'
        '[prices."my-cloud"]\ninput = 1.0\noutput = 2.0\nas_of = "2026-12-01"\nsource = "https://example.org"\n'
    )
    home.extra_env["GRISTMILL_CONFIG"] = str(home.root / "gristmill.toml")
    report = json.loads(home.cli("costs", "--json", check=True).stdout)
    row = report["rows"][0]
    assert list(row["paid_usd"]) == ["my-cloud"]
    assert row["paid_usd"]["my-cloud"] == pytest.approx((row["tokens_in"] * 1.0 + row["tokens_out"] * 2.0) / PER)

    text = home.cli("costs", check=True).stdout
    assert "my-cloud: $1 in / $2 out per million tokens, as of 2026-12-01" in text


def test_an_unknown_comparison_and_a_bad_since_are_one_sentence(home):
    home.extra_env["GRISTMILL_COST_COMPARE"] = '["gpt-99"]'
    result = home.cli("costs")
    assert result.returncode == 2 and "cost_compare names gpt-99, which the price table lacks" in result.stderr
    del home.extra_env["GRISTMILL_COST_COMPARE"]
    result = home.cli("costs", "--since", "fortnight")
    assert result.returncode == 2 and "--since 'fortnight'" in result.stderr and "Traceback" not in result.stderr


def test_since_leaves_out_older_calls(home):
    report = json.loads(home.cli("costs", "--since", "1h", "--json", check=True).stdout)
    assert report["rows"] and report["since"]
    assert price_table({})["gpt-4o"].input == shipped_prices()["gpt-4o"].input


def _calls(home, run_id: int) -> list[dict]:
    return json.loads(home.cli("show", str(run_id), "--json", check=True).stdout)["calls"]
