"""Recorded runs for the eval, shadow, refile and export tests: a mail room of 24 documents, 6 of them hard.

The stand-in's weaker model answers differently exactly on documents marked `[[standin:hard]]`
(daemon/standin/fill.py): its label is the one named least often (ties: the last declared), never
the normal pick here, and the first extract field (`vendor`) gets " (weak)" appended. So a test
knows each disagreement in advance: the hard documents, and only they.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import Home

LABELS = ("invoice", "receipt", "letter")
COUNT = 24
TWIN, WEAK = "twin", "weakling"  # a model that answers like llama3.2; one that errs on hard documents

WORKFLOW = """\
name: mail-room
trigger:
  watch: {path: ~/Inbox, settle_seconds: 0.2}
steps:
  - id: kind
    classify:
      labels:
        invoice: A bill that asks for payment
        receipt: Proof of a payment already made
        letter: Personal or business correspondence
  - id: fields
    extract:
      fields: {vendor: string, total: number}
  - id: filed
    route:
      by: kind
      routes:
        invoice: {move_to: ~/Documents/Invoices}
        receipt: {move_to: ~/Documents/Receipts}
        letter: {move_to: ~/Documents/Letters}
"""

FOLDERS = {"invoice": "Invoices", "receipt": "Receipts", "letter": "Letters"}


def kind_of(i: int) -> str:
    return LABELS[i % 3]


def is_hard(i: int) -> bool:
    return i % 4 == 1


def name_of(i: int) -> str:
    return f"doc-{i:02d}.txt"


def document(i: int) -> str:
    """A document naming its kind three times and no other label; every 4th one (from 1) is hard."""
    kind = kind_of(i)
    hard = "\n[[standin:hard]]" if is_hard(i) else ""
    return f"{kind.upper()} number {i}\nVendor: Vendor {i}\nTotal: {100 + i}.50\n\nThis {kind} is a {kind}.{hard}\n"


def drop_all(home: Home, indices: range = range(COUNT)) -> None:
    for i in indices:
        home.drop(name_of(i), document(i))


def run_ids(home: Home) -> dict[int, int]:
    """Document index → run id."""
    return {int(Path(r["input"]).stem.split("-")[1]): r["id"] for r in home.runs()}


def eval_json(home: Home, *args: str) -> dict[str, Any]:
    done = home.cli("eval", "mail-room", *args, "--json", check=True)
    return json.loads(done.stdout)
