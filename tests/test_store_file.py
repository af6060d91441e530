"""The SQLite file under the run store (daemon/store/db.py): its URL, and what becomes of the store when its
folder cannot be made, its file is deleted or replaced while open, or its pages are damaged: one sentence each."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from sqlalchemy import text

from daemon.errors import DatabaseLost, StoreError
from daemon.store import make_engine
from daemon.store.db import probe, sqlite_file
from daemon.store.migrate import upgrade


def test_a_database_folder_that_cannot_be_made_is_one_sentence(tmp_path):
    (tmp_path / "data").write_text("a file where the data folder should be")
    with pytest.raises(StoreError) as caught:
        make_engine(f"sqlite:///{tmp_path / 'data' / 'gristmill.db'}")
    assert str(caught.value).startswith(f"cannot create the database folder {tmp_path / 'data'}: ")


@pytest.mark.parametrize("what", ["deleted", "replaced by another file"])
def test_a_database_deleted_or_replaced_while_open_is_lost_and_says_which(tmp_path, what):
    path = tmp_path / "gristmill.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    try:
        probe(engine)  # the file it opened: fine
        path.unlink()
        if what != "deleted":
            path.write_bytes(b"")
        with pytest.raises(DatabaseLost) as caught:
            probe(engine)
    finally:
        engine.dispose()
    assert str(caught.value).startswith(f"the database {path} was {what} while gristmill had it open; ")
    assert str(caught.value).endswith("restore it from a backup, or restart gristmill to begin a new, empty one")


def test_only_a_sqlite_url_names_a_file():
    assert sqlite_file("sqlite:////srv/gristmill/gristmill.db") == Path("/srv/gristmill/gristmill.db")
    assert sqlite_file("postgresql+psycopg://gristmill@127.0.0.1/gristmill") is None
    assert sqlite_file("sqlite://") is None  # in memory


def test_a_database_whose_pages_are_damaged_is_lost_in_sqlites_words(tmp_path):
    path = tmp_path / "gristmill.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO meta (key, value) VALUES (:key, :value)"),
                     [{"key": f"k{n:05d}", "value": "v" * 200} for n in range(2000)])  # fmt: skip
    engine.dispose()  # the last connection checkpoints the log into the file
    with open(path, "r+b") as db:  # the last page's cells overwritten, the file's header intact
        db.seek(db.seek(0, os.SEEK_END) - 4096 + 8)
        db.write(random.Random(17).randbytes(2000))
    engine = make_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(DatabaseLost) as caught:
            probe(engine)
    finally:
        engine.dispose()
    assert f"{path} is corrupt" in str(caught.value) and "(SQLite says: *** in database main ***" in str(caught.value)
