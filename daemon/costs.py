"""What the model calls cost in tokens and time, and what the same tokens would cost on paid APIs.

The price table ships as data (`daemon/data/prices.toml`: per million input and output tokens,
with the date and the page each price was read from); `[prices."NAME"]` in gristmill.toml adds or
overrides rows.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PER = 1_000_000  # prices are per million tokens


class Price(BaseModel):
    """One paid API model's standard price, and where and when it was read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0, description="US dollars per million input (prompt) tokens")
    output: float = Field(ge=0, description="US dollars per million output (completion) tokens")
    as_of: str = Field(description="the date the price was read, YYYY-MM-DD")
    source: str = Field(description="the page it was read from")

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        """Dollars for these tokens."""
        return (tokens_in * self.input + tokens_out * self.output) / PER


def shipped_prices() -> dict[str, Price]:
    """The price table that ships with gristmill."""
    data = tomllib.loads(files("daemon").joinpath("data/prices.toml").read_text(encoding="utf-8"))
    return {name: Price(**row) for name, row in data["prices"].items()}


def price_table(extra: Mapping[str, Price]) -> dict[str, Price]:
    """The shipped table with the settings' rows added or overriding."""
    return {**shipped_prices(), **extra}


@dataclass(frozen=True)
class Usage:
    """What one workflow's calls to one model used."""

    workflow: str
    model: str
    runs: int
    calls: int
    tokens_in: int
    tokens_out: int
    model_seconds: float

    def paid(self, prices: Mapping[str, Price]) -> dict[str, float]:
        """What these tokens would have cost on each paid API in `prices`, in dollars."""
        return {name: round(price.cost(self.tokens_in, self.tokens_out), 6) for name, price in prices.items()}


def report(usages: Iterable[Usage], prices: Mapping[str, Price]) -> dict[str, Any]:
    """`costs --json`: one row per workflow and model, totals, and the prices used with their sources."""
    rows = [
        {
            "workflow": u.workflow,
            "model": u.model,
            "runs": u.runs,
            "calls": u.calls,
            "tokens_in": u.tokens_in,
            "tokens_out": u.tokens_out,
            "model_seconds": round(u.model_seconds, 3),
            "paid_usd": u.paid(prices),
        }
        for u in usages
    ]  # fmt: skip  (one row reads as one record)
    totals = {key: sum(row[key] for row in rows) for key in ("runs", "calls", "tokens_in", "tokens_out")}
    totals["model_seconds"] = round(sum(row["model_seconds"] for row in rows), 3)
    totals["paid_usd"] = {name: round(sum(row["paid_usd"][name] for row in rows), 6) for name in prices}
    return {
        "rows": rows,
        "totals": totals,
        "prices": {name: price.model_dump() for name, price in prices.items()},
    }
