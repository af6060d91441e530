"""The journal file: what it says of each run in hand, as another process reads it."""

from __future__ import annotations

from daemon.engine.journal import Journal, Phase, journal_path, read_journal


def test_the_file_says_each_runs_phase_however_many_runs_are_in_hand(tmp_path):
    journal = Journal(tmp_path, "node-1")
    runs = range(1, 151)  # more than the file's first slots: it grows while runs are in hand
    for run_id in runs:
        journal.enter(run_id)
    with journal.waiting(7):
        assert read_journal(journal.path) == {n: Phase.WAITING if n == 7 else Phase.WORKING for n in runs}
    for run_id in runs[:100]:
        journal.leave(run_id)
    journal.enter(500)  # takes a slot given back
    assert read_journal(journal.path) == {**{n: Phase.WORKING for n in runs[100:]}, 500: Phase.WORKING}
    journal.close()
    assert read_journal(journal_path(tmp_path, "node-1")) is None  # a clean exit leaves no journal
