"""The daemon over hostile files next to good ones: each bad one ends with a reason, the rest go on."""

from __future__ import annotations

import os
import re

from tests import docs_support as docs
from tests.support import make_home

WORKFLOW = """
name: sort
model: llama3.2
trigger: {watch: {path: ~/Inbox}}
steps:
  - id: summary
    summarise: {max_words: 30}
  - id: kind
    classify:
      labels: {invoice: A bill that asks for payment, letter: Personal correspondence}
  - id: filed
    route:
      by: kind
      routes:
        invoice: {move_to: ~/Documents/Invoices}
        letter: {move_to: ~/Documents/Letters}
      default: {move_to: ~/Documents/Unsorted}
"""

# Each bad file and a pattern its run's reason must match.
BAD = {
    "broken.pdf": ("failed", "broken.pdf could not be read as a PDF"),
    "bomb.docx": ("failed", "bomb.docx could not be read as a Word document: .*zip bomb"),
    "program.txt": ("skipped", "program.txt is a binary file"),
    "empty.txt": ("skipped", "empty.txt is empty"),
}


def test_hostile_files_end_with_reasons_and_good_ones_are_routed(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.extra_env.update(GRISTMILL_EXTRACT_MEMORY_MB="256", GRISTMILL_EXTRACT_SECONDS="20")
    home.write_workflow("sort.yaml", WORKFLOW)
    files = {
        "broken.pdf": docs.pdf(["Invoice total 12 EUR"])[:70] + b"\x00 not the rest of a PDF",
        "bomb.docx": docs.docx_bomb(64),
        "program.txt": b"\x7fELF\x02\x01\x01\x00" + os.urandom(4096),
        "empty.txt": b"",
        "invoice.pdf": docs.pdf(["Invoice number 2026-117", "This invoice asks for payment of the invoice total."]),
        "letter.docx": docs.docx(["Dear Anna,", "thank you for your letter. Another letter follows soon."]),
    }
    for name, data in files.items():
        (home.inbox / name).write_bytes(data)

    # Returning at all also shows the parser helper exits with the daemon (it shares its stderr).
    result = home.cli("run", "--once", timeout=180)

    assert result.returncode == 1  # some runs failed; the daemon itself finished the backlog
    runs = {os.path.basename(r["input"]): r for r in home.runs()}
    assert set(runs) == set(files)
    for name, (status, reason) in BAD.items():
        run = runs[name]
        assert run["status"] == status, (name, run["error"])
        assert re.search(reason, run["error"]), (name, run["error"])
        assert run["attempts"] <= 1  # a file that can never be read is not tried again
        assert (home.inbox / name).exists()  # never moved or deleted
    assert runs["invoice.pdf"]["status"] == "succeeded", runs["invoice.pdf"]["error"]
    assert runs["letter.docx"]["status"] == "succeeded", runs["letter.docx"]["error"]
    assert (home.docs / "Invoices" / "invoice.pdf").read_bytes() == files["invoice.pdf"]
    assert (home.docs / "Letters" / "letter.docx").read_bytes() == files["letter.docx"]
    assert runs["invoice.pdf"]["outputs"]["kind"]["label"] == "invoice"
