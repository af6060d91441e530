"""`gristmill costs`: tokens, calls and model time per workflow and model, priced as paid APIs would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from daemon.costs import Price, price_table, report
from daemon.durations import parse_duration
from daemon.errors import UsageError
from daemon.settings import Settings
from daemon.store.usage import usage


def costs_report(settings: Settings, engine: Any, since: str | None) -> dict[str, Any]:
    """The report `costs --json` prints, over calls made since `since` (e.g. 30d), or all."""
    start = None
    if since is not None:
        try:
            start = datetime.now(UTC) - parse_duration(since)
        except ValueError as exc:
            raise UsageError(f"--since {since!r}: {exc}") from exc
    table = price_table(settings.prices)
    unknown = [name for name in settings.cost_compare if name not in table]
    if unknown:
        raise UsageError(
            f"cost_compare names {', '.join(unknown)}, which the price table lacks; known: {', '.join(table)} "
            '(add a row under [prices."NAME"] in gristmill.toml)'
        )
    compared = {name: table[name] for name in settings.cost_compare}
    result = report(usage(engine, since=start), compared)
    result["since"] = start.isoformat() if start else None
    return result


def print_costs(console: Console, result: dict[str, Any]) -> None:
    """The report as a table, with the prices it used and where they come from."""
    prices: dict[str, Price] = {name: Price(**row) for name, row in result["prices"].items()}
    table = Table(box=None, pad_edge=False)
    for column in ("workflow", "model", "runs", "calls", "tokens in", "tokens out", "model time"):
        table.add_column(column, justify="left" if column in ("workflow", "model") else "right")
    for name in prices:
        table.add_column(f"as {name}", justify="right")
    for row in [*result["rows"], {"workflow": "total", "model": "", **result["totals"]}]:
        table.add_row(
            row["workflow"],
            row["model"],
            f"{row['runs']:,}",
            f"{row['calls']:,}",
            f"{row['tokens_in']:,}",
            f"{row['tokens_out']:,}",
            f"{row['model_seconds']:,.1f} s",
            *(f"${row['paid_usd'][name]:,.2f}" for name in prices),
        )  # fmt: skip  (the cells read as one row)
    console.print(table)
    for name, price in prices.items():
        console.print(
            f"{name}: ${price.input:g} in / ${price.output:g} out per million tokens, as of {price.as_of} "
            f"({price.source})",
            markup=False,
            highlight=False,
        )  # fmt: skip  (one line of output)
    console.print("Your own model: no per-token bill; the time above is what it cost you.", highlight=False)
