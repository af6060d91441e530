"""The small life-cycle parts in-process: notify over a real socket, the health-gated watchdog, reloads."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from daemon.errors import WorkflowError
from daemon.health import Health, Watchdog
from daemon.lifecycle import Lifecycle, keep_last_good
from daemon.notify import Notifier
from daemon.workflow import load_workflows
from tests.support import REPO


def _abstract_listener() -> tuple[socket.socket, str]:
    name = f"gristmill-test-{os.getpid()}-{id(object())}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(10)
    return sock, "@" + name


def test_notifier_reaches_an_abstract_socket_and_is_silent_without_one():
    sock, address = _abstract_listener()
    with sock:
        Notifier(address).ready("starting")
        assert sock.recv(4096) == b"READY=1\nSTATUS=starting"
    assert Notifier(None).send("READY=1") is False


def test_the_watchdog_is_fed_only_while_every_check_passes():
    sock, address = _abstract_listener()
    now = [0.0]
    healthy = {"database": True}
    dog = Watchdog(
        Notifier(address), Health({"database": lambda: healthy["database"], "workers": lambda: True}),
        usec=2_000_000, status=lambda: "2 queued", clock=lambda: now[0],
    )  # fmt: skip
    with sock:
        dog.tick()
        assert [sock.recv(4096), sock.recv(4096)] == [b"WATCHDOG=1", b"STATUS=2 queued"]
        assert dog.due_in() == 1.0  # half of WATCHDOG_USEC
        dog.tick()  # not due yet: nothing sent
        healthy["database"] = False
        now[0] = 1.0
        dog.tick()
        assert sock.recv(4096) == b"STATUS=unhealthy: database"
        now[0] = 2.0
        healthy["database"] = True
        dog.tick()
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_health_is_checked_and_logged_without_systemd(caplog):
    now = [0.0]
    alive = {"workers": True}
    dog = Watchdog(
        Notifier(None), Health({"workers": lambda: alive["workers"]}), usec=None, status=lambda: "unused",
        clock=lambda: now[0],
    )  # fmt: skip
    caplog.set_level("WARNING", logger="gristmill")
    dog.tick()
    alive["workers"] = False
    for _ in range(3):  # a problem is said once, not at every look
        now[0] += dog.interval
        dog.tick()
    alive["workers"] = True
    now[0] += dog.interval
    dog.tick()
    said = [r.getMessage() for r in caplog.records]
    assert said == ["unhealthy: workers (under systemd its watchdog is no longer fed)", "healthy again"]


def test_a_health_check_that_raises_counts_as_failed():
    assert Health({"database": lambda: 1 / 0}).problems() == ["database (ZeroDivisionError: division by zero)"]


def test_a_second_stop_request_aborts_and_reloads_wait_for_quiet():
    now = [0.0]
    life = Lifecycle(clock=lambda: now[0])
    life.request_reload()
    assert not life.take_reload()  # edits come in bursts: wait for a quiet moment
    now[0] = 1.0
    assert life.take_reload() and not life.take_reload()
    life.request_stop()
    assert life.stopping and not life.aborted
    life.request_stop()
    assert life.aborted
    life.wait(5.0)  # returns at once when stopping
    life.close()


def test_a_broken_file_keeps_its_last_good_version(tmp_path):
    folder = tmp_path / "workflows"
    folder.mkdir()
    path = folder / "sort-inbox.yaml"
    path.write_text((REPO / "workflows" / "sort-inbox.yaml").read_text())
    good, errors = load_workflows(folder)
    assert not errors
    path.write_text("name: sort-inbox\nbogus: 1\n")
    loaded, errors = load_workflows(folder)
    assert "sort-inbox" not in loaded and all(isinstance(e, WorkflowError) for e in errors)

    kept = keep_last_good(good, loaded, errors)

    assert kept == {"sort-inbox": good["sort-inbox"]}
    path.unlink()  # a removed file is not kept
    assert keep_last_good(good, *load_workflows(folder)) == {}
    assert Path(good["sort-inbox"].source).name == "sort-inbox.yaml"
