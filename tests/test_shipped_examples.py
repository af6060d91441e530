"""What the README promises a new user: the set-up lines, one way of writing sizes, and a shipped
sort-inbox that takes every document kind the README lists."""

from __future__ import annotations

import json

from tests import docs_support as docs
from tests.support import INVOICE, LETTER, RECEIPT, REPO, make_home

README = (REPO / "README.md").read_text()


def test_set_up_uses_a_venv_and_says_the_daemon_runs_in_the_foreground():
    assert "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && gristmill run" in README
    assert "Python 3.11 or newer" in README and "runs in the foreground" in README


def test_the_file_size_limit_is_written_one_way():
    assert "50 MB" not in README and README.count("50 MiB") == 1


def test_sort_inbox_takes_every_document_kind_the_readme_lists(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.use_example("sort-inbox.yaml")
    documents = {
        "invoice.pdf": docs.pdf(["INVOICE please pay this invoice"]),
        "receipt.txt": RECEIPT.encode(),
        "letter.md": LETTER.encode(),
        "letter.docx": docs.docx(["Dear Anna,", "thank you for your letter."]),
        "page.html": docs.HTML_PAGE.encode(),
        "page.htm": docs.HTML_PAGE.encode().replace(b"12 percent", b"13 percent"),
        "mail.eml": docs.eml_with_attachment(),
        "table.csv": b"item,price\ntea,3.50\n",
        "data.json": json.dumps({"invoice": INVOICE}).encode(),
    }
    for name, data in documents.items():
        (home.inbox / name).write_bytes(data)

    home.cli("run", "--once", check=True)

    runs = {r["input"].rsplit("/", 1)[-1]: r for r in home.runs()}
    assert set(runs) == set(documents)
    assert {name: run["status"] for name, run in runs.items()} == dict.fromkeys(documents, "succeeded")
