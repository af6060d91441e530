"""The mailbox watcher against a real Dovecot: every message once, through restarts, drops and UIDVALIDITY changes."""

from __future__ import annotations

import hashlib
import logging

import pytest

from daemon.mail import WatchState
from daemon.mail.watcher import backoff_delay
from tests.dovecot import message
from tests.mail_support import Inbox, make_watcher
from tests.support import wait_for


@pytest.fixture
def inbox():
    return Inbox()


@pytest.fixture
def watchers():
    """Watchers started by a test; all stopped at its end, whatever happened."""
    started = []
    yield started
    for watcher in started:
        watcher.stop()


def _start(watchers, watcher):
    watchers.append(watcher.start())
    return watcher


def _settled(server, inbox, n, folder="INBOX"):
    """Append a sentinel and wait for it: every call for earlier messages has then been made."""
    server.append(message(10_000 + n, subject="sentinel"), folder)
    wait_for(lambda: inbox.count() >= n + 1, timeout=30, what=f"{n + 1} messages handed over")
    assert inbox.count() == n + 1, "a message was handed over twice"


def test_nine_messages_each_once_over_idle(dovecot, inbox, watchers, tmp_path):
    sent = [message(n) for n in range(1, 10)]
    for data in sent[:4]:
        dovecot.append(data)
    watcher = _start(watchers, make_watcher(dovecot, inbox, tmp_path))
    wait_for(lambda: inbox.count() == 4, what="the four waiting messages")
    assert watcher.status.mode == "idle"
    for data in sent[4:]:
        dovecot.append(data)
    wait_for(lambda: inbox.count() == 9, what="the five new messages")
    _settled(dovecot, inbox, 9)
    assert [data for _, data in inbox.calls[:9]] == sent  # intact, oldest first
    assert len(set(inbox.identities)) == 10
    assert {key.message_id for key, _ in inbox.calls[:9]} == {
        f"<m{n}.gristmill-test@example.org>" for n in range(1, 10)
    }
    assert all(
        key.url.startswith(f"imap://alice@127.0.0.1:{dovecot.imap_port}/INBOX;UIDVALIDITY=") for key, _ in inbox.calls
    )


def test_polls_when_the_server_has_no_idle(dovecot, inbox, watchers, tmp_path):
    dovecot.restart_with_capabilities(["IDLE"])
    watcher = _start(watchers, make_watcher(dovecot, inbox, tmp_path, spec_options={"poll_interval": 1}))
    wait_for(lambda: watcher.status.state is WatchState.WATCHING, what="the watcher to connect")
    assert watcher.status.mode == "poll"
    dovecot.append(message(1))
    dovecot.append(message(2, message_id=False))
    wait_for(lambda: inbox.count() == 2, what="two polled messages")
    _settled(dovecot, inbox, 2)
    key, data = inbox.calls[1]
    assert key.message_id is None and key.identity == "sha256:" + hashlib.sha256(data).hexdigest()


def test_idle_is_renewed_and_still_sees_new_mail(dovecot, inbox, watchers, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="imapclient")
    _start(watchers, make_watcher(dovecot, inbox, tmp_path, idle_renew=0.3))
    wait_for(lambda: sum("< DONE" in r.getMessage() for r in caplog.records) >= 3, what="three IDLE renewals")
    dovecot.append(message(1))
    wait_for(lambda: inbox.count() == 1, what="the message after renewals")


def test_a_message_that_arrives_while_stopped_comes_after_start_and_none_twice(dovecot, inbox, watchers, tmp_path):
    for n in (1, 2):
        dovecot.append(message(n))
    first = _start(watchers, make_watcher(dovecot, inbox, tmp_path))
    wait_for(lambda: inbox.count() == 2, what="the first two")
    first.stop()
    assert not first.alive and first.status.state is WatchState.STOPPED
    dovecot.append(message(3))
    _start(watchers, make_watcher(dovecot, inbox, tmp_path))  # a restart: the same cursor file
    wait_for(lambda: inbox.count() == 3, what="the message that came while stopped")
    _settled(dovecot, inbox, 3)
    assert len(set(inbox.identities)) == 4


def test_server_stopped_and_started_midway_loses_nothing_and_logs_twice(dovecot, inbox, watchers, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gristmill")
    for n in (1, 2, 3):
        dovecot.append(message(n))
    watcher = _start(watchers, make_watcher(dovecot, inbox, tmp_path))
    wait_for(lambda: inbox.count() == 3, what="the first three")
    dovecot.stop()
    wait_for(lambda: watcher.status.state is WatchState.DOWN, what="the watcher to notice")
    wait_for(lambda: watcher.status.failures >= 3, what="a few reconnection tries")
    dovecot.start()
    for n in (4, 5, 6):
        dovecot.append(message(n))
    wait_for(lambda: inbox.count() == 6, what="the messages after the restart")
    _settled(dovecot, inbox, 6)
    lines = [r.getMessage() for r in caplog.records if r.name == "gristmill"]
    assert sum("is unreachable" in line for line in lines) == 1, lines
    assert sum("is reachable again" in line for line in lines) == 1, lines


def test_connection_dropped_mid_fetch_loses_nothing(dovecot, inbox, watchers, tmp_path):
    # 3 MB each: a FETCH brings two at a time, so the server dies between two FETCHes of one drain.
    big = [message(n, body=f"{n} " + "x" * (3 * 1024 * 1024)) for n in range(1, 7)]
    for data in big:
        dovecot.append(data)
    taken = inbox.submit

    def submit_then_kill(data, key):
        if inbox.count() == 2 and dovecot.process is not None:
            dovecot.stop()  # mid-drain, on the watcher's own thread
        return taken(data, key)

    inbox.submit = submit_then_kill
    watcher = _start(watchers, make_watcher(dovecot, inbox, tmp_path))
    wait_for(lambda: watcher.status.state is WatchState.DOWN, what="the drop")
    assert inbox.count() < 6
    dovecot.start()
    wait_for(lambda: inbox.count() == 6, what="the rest after the drop")
    _settled(dovecot, inbox, 6)
    assert [data for _, data in inbox.calls[:6]] == big


def test_uidvalidity_change_reads_again_but_runs_nothing_twice(dovecot, inbox, watchers, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gristmill")
    for n in (1, 2, 3):
        dovecot.append(message(n), "Triage")
    first = _start(watchers, make_watcher(dovecot, inbox, tmp_path, spec_options={"folder": "Triage"}))
    wait_for(lambda: inbox.count() == 3, what="the first three")
    old = dovecot.uidvalidity("Triage")
    first.stop()
    dovecot.recreate("Triage")  # the folder is rebuilt: same mail, new UIDVALIDITY and UIDs
    assert dovecot.uidvalidity("Triage") != old
    for n in (1, 2, 3, 4):
        dovecot.append(message(n), "Triage")
    _start(watchers, make_watcher(dovecot, inbox, tmp_path, spec_options={"folder": "Triage"}))
    wait_for(lambda: len(inbox.runs) == 4, what="the one new message")
    _settled(dovecot, inbox, 7, folder="Triage")
    assert len(inbox.runs) == 5  # the store's dedupe by Message-ID: 1-3 run once, 4 and the sentinel once
    assert any("UIDVALIDITY changed" in r.getMessage() for r in caplog.records)


def test_a_declined_submit_is_tried_again_in_order(dovecot, inbox, watchers, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gristmill")
    inbox.decline = 3
    for n in (1, 2):
        dovecot.append(message(n))
    _start(watchers, make_watcher(dovecot, inbox, tmp_path))
    wait_for(lambda: inbox.count() == 2, what="both after the store came back")
    assert [key.message_id for key, _ in inbox.calls] == ["<m1.gristmill-test@example.org>",
                                                          "<m2.gristmill-test@example.org>"]  # fmt: skip
    wait_for(lambda: any("queueing works again" in r.getMessage() for r in caplog.records), what="the log line")
    lines = [r.getMessage() for r in caplog.records]
    assert sum("could not be queued" in line for line in lines) == 1
    assert sum("queueing works again" in line for line in lines) == 1


def test_a_message_over_the_size_limit_is_refused_with_its_key(dovecot, inbox, watchers, tmp_path):
    refused = []
    dovecot.append(message(1, body="y" * 300_000))
    dovecot.append(message(2))
    _start(watchers, make_watcher(dovecot, inbox, tmp_path, max_bytes=100_000,
                                  refuse=lambda key, why: refused.append((key, why))))  # fmt: skip
    wait_for(lambda: inbox.count() == 1 and refused, what="one handed over, one refused")
    key, why = refused[0]
    assert key.message_id == "<m1.gristmill-test@example.org>" and key.size > 300_000
    assert "over the limit of 100000" in why and "GRISTMILL_MAX_FILE_BYTES" in why
    assert inbox.calls[0][0].message_id == "<m2.gristmill-test@example.org>"


def test_backoff_doubles_up_to_the_cap_through_the_injected_sleeper(dovecot, inbox, watchers, tmp_path):
    import threading

    waits, stop = [], threading.Event()

    def sleep(seconds):
        waits.append(seconds)
        return stop.wait(0.01)

    dovecot.stop()
    watcher = make_watcher(dovecot, inbox, tmp_path, sleep=sleep, jitter=lambda: 1.0, backoff_base=1, backoff_cap=8)
    _start(watchers, watcher)
    wait_for(lambda: len(waits) >= 6, what="six reconnection waits")
    stop.set()
    watcher.stop()
    assert waits[:6] == [1, 2, 4, 8, 8, 8]
    assert backoff_delay(3, 1.0, 60.0, 0.0) == 2.0  # jitter spreads a delay over its upper half


def test_folder_recreated_under_a_running_watcher(dovecot, inbox, watchers, tmp_path):
    for n in (1, 2):
        dovecot.append(message(n), "Triage")
    _start(watchers, make_watcher(dovecot, inbox, tmp_path, spec_options={"folder": "Triage"}))
    wait_for(lambda: inbox.count() == 2, what="the first two")
    dovecot.recreate("Triage")
    for n in (1, 2, 3):
        dovecot.append(message(n), "Triage")
    wait_for(lambda: len(inbox.runs) == 3, what="the new message in the new folder")
    _settled(dovecot, inbox, inbox.count(), folder="Triage")
    assert len(inbox.runs) == 4


@pytest.mark.parametrize("existing", ["unseen", "none"])
def test_first_start_takes_only_the_unread_or_none_of_what_is_there(dovecot, inbox, watchers, tmp_path, existing):
    dovecot.append(message(1), flags=["\\Seen"])
    dovecot.append(message(2))  # unread
    inbox.decline = 1  # the first pass is cut short once: it is made again in full, nothing skipped
    first = _start(watchers, make_watcher(dovecot, inbox, tmp_path, spec_options={"existing": existing}))
    cursor = tmp_path / "mail" / "mail-test.cursor.json"
    wait_for(cursor.exists, what="the first start's pass to end (the cursor is saved then)")
    dovecot.append(message(3))  # new: taken either way
    _settled(dovecot, inbox, 2 if existing == "unseen" else 1)
    first.stop()
    taken = [key.message_id for key, _ in inbox.calls]
    expected = ["<m2.gristmill-test@example.org>"] if existing == "unseen" else []
    assert taken[: len(expected) + 1] == [*expected, "<m3.gristmill-test@example.org>"]
    dovecot.append(message(4), flags=["\\Seen"])  # after the first start, read or not, every message counts
    _start(watchers, make_watcher(dovecot, inbox, tmp_path, spec_options={"existing": existing}))
    wait_for(lambda: "<m4.gristmill-test@example.org>" in [k.message_id for k, _ in inbox.calls], what="message 4")
