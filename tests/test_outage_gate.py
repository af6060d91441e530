"""The outage gate in-process, with an injected clock and jitter: the backoff's cap, one probe at a time.

README, "Crashes, outages and stopping": "one run at a time probes the server with exponential backoff
and jitter, capped at GRISTMILL_BACKOFF_MAX_SECONDS". test_outage.py shows the whole daemon waiting;
these pin the arithmetic and the single probe among several workers.
"""

from __future__ import annotations

import logging
import threading

from daemon.engine.outage import OutageGate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_backoff_doubles_from_its_base_and_stops_at_the_cap():
    gate = OutageGate(base=1.0, cap=8.0, clock=Clock(), jitter=lambda: 1.0)  # jitter 1.0: the full delay
    assert [gate.down("refused") for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    low = OutageGate(base=1.0, cap=8.0, clock=Clock(), jitter=lambda: 0.0)  # jitter 0.0: half of it
    assert [low.down("refused") for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_the_next_try_waits_for_the_delay_and_success_resets_the_backoff():
    clock = Clock()
    gate = OutageGate(base=2.0, cap=60.0, clock=clock, jitter=lambda: 1.0)
    assert gate.may_call() == (True, 0.0) and not gate.is_down
    assert gate.down("refused") == 2.0 and gate.is_down and gate.reason == "refused"
    assert gate.may_call() == (False, 2.0)
    clock.now += 1.5
    assert gate.may_call() == (False, 0.5)
    clock.now += 0.5
    assert gate.may_call() == (True, 0.0)  # due: this caller is the probe
    gate.up()
    assert not gate.is_down and gate.reason is None
    assert gate.down("refused again") == 2.0  # counted from the base again, not from where it was


def test_one_worker_probes_a_down_server_and_the_others_wait_until_it_reports():
    clock = Clock()
    gate = OutageGate(base=1.0, cap=60.0, clock=clock, jitter=lambda: 1.0)
    gate.down("refused")
    clock.now += 1.0
    answers: list[tuple[bool, float]] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        answers.append(gate.may_call())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(allowed for allowed, _ in answers) == [False] * 7 + [True]
    assert all(wait > 0 for allowed, wait in answers if not allowed)  # the others sleep, no busy loop
    assert gate.may_call()[0] is False  # still probing
    gate.end_probe()  # the probe found nothing to send: the next worker may probe
    assert gate.may_call() == (True, 0.0)
    assert gate.may_call()[0] is False
    assert gate.down("still refused") == 2.0  # the probe failed: everyone waits the doubled delay
    assert gate.may_call() == (False, 2.0)


def test_a_fresh_gate_lets_calls_through_and_backs_off_from_one_second_to_a_minute():
    gate = OutageGate(clock=Clock(), jitter=lambda: 1.0)
    assert (gate.is_down, gate.reason, gate.may_call()) == (False, None, (True, 0.0))
    delays = [gate.down("refused") for _ in range(8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_the_log_says_once_that_the_server_is_away_and_once_that_it_is_back(caplog):
    gate = OutageGate(clock=Clock(), jitter=lambda: 1.0, name="gpu-box", url="http://127.0.0.1:9")
    with caplog.at_level(logging.INFO, logger="gristmill"):
        gate.down("connection refused")
        assert [r.getMessage() for r in caplog.records] == [
            "model server 'gpu-box' unavailable: connection refused; its calls go to another server that has the"
            " model or wait, and it is tried again with backoff"
        ]
        gate.down("connection refused")
        gate.down("timed out")
        gate.up()
        gate.up()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[1:] == [
        "the model server is back: 'gpu-box' at http://127.0.0.1:9 answered after 3 failed tries; resuming"
    ]


def test_peek_says_how_long_until_a_call_may_go_to_the_server():
    clock = Clock()
    gate = OutageGate(base=2.0, cap=60.0, clock=clock, jitter=lambda: 1.0)
    assert gate.peek() == 0.0  # up
    gate.down("refused")
    assert gate.peek() == 2.0
    clock.now += 0.5
    assert gate.peek() == 1.5
    clock.now += 1.5
    assert gate.peek() == 0.0  # due, and nobody probes
    assert gate.may_call() == (True, 0.0)
    assert gate.peek() == 2.0  # someone probes: wait at least the base
    clock.now -= 5.0
    assert gate.peek() == 5.0  # ... or until the retry time when that is later
