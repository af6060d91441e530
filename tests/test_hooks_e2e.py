"""HTTP hooks end to end: the real daemon serving the shipped form-triage workflow on the dashboard's server,
real requests, real SIGKILL."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from daemon.domain import RunStatus
from tests.support import free_port, make_home, wait_for
from tests.test_crash import DEADLINE, Daemon, all_runs

TOKEN = "form-token-Zq9xV-never-logged"
FORM = {"name": "Ann Example", "message": "Please help: support support, the export is broken."}


@pytest.fixture
def hooks(tmp_path, standin):
    """A home with the shipped form-triage example, its token set and a free port for GRISTMILL_HTTP."""
    home = make_home(tmp_path, standin.url)
    home.use_example("form-triage.yaml")
    port = free_port()
    home.extra_env.update(GRISTMILL_HTTP=f"127.0.0.1:{port}", FORM_TRIAGE_TOKEN=TOKEN)
    home.url = f"http://127.0.0.1:{port}/hooks/form-triage"  # type: ignore[attr-defined]
    daemons: list[Daemon] = []

    def start() -> Daemon:
        daemon = Daemon(home).start()
        daemons.append(daemon)
        wait_for(lambda: "gristmill ready" in daemon.log, timeout=DEADLINE, what="the daemon to be ready")
        return daemon

    home.start = start  # type: ignore[attr-defined]
    yield home
    for daemon in daemons:
        daemon.kill()


def _post(url: str, *, token: str | None = TOKEN, **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(url, headers=headers, timeout=60, **kwargs)


def test_without_the_right_token_nothing_is_queued_or_stored(hooks):
    daemon = hooks.start()
    for token in (None, "wrong-token", TOKEN[:-1], TOKEN + "x"):
        answer = _post(hooks.url, token=token, json=FORM)
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"].startswith("Bearer")
    basic = httpx.post(hooks.url, json=FORM, auth=("user", TOKEN), timeout=30)
    assert basic.status_code == 401
    assert _post(hooks.url, content=b"x" * 10, headers={"Content-Type": "application/x-unknown"}).status_code == 415
    assert _post(hooks.url.replace("form-triage", "other"), json=FORM).status_code == 404
    assert httpx.get(hooks.url, timeout=30).status_code == 405
    assert daemon.stop() == 0
    assert all_runs(hooks) == []
    assert [p for p in (hooks.data / "inbound").rglob("*") if p.is_file()] == []
    assert TOKEN not in daemon.log


def test_wait_answers_the_outputs_and_the_same_body_runs_once(hooks):
    daemon = hooks.start()
    answer = _post(hooks.url + "?wait=30", json=FORM)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "succeeded" and body["outputs"]["kind"]["label"] == "support"
    note = hooks.root / "Documents" / "Forms" / "support"
    (written,) = note.iterdir()
    assert written == Path(body["outputs"]["write"]["path"])
    text = written.read_text()
    assert text.startswith("# support: Ann Example") and "- message: Please help" in text  # input.json in templates

    again = _post(hooks.url, json=FORM)  # the same content: the first run's id, nothing new
    assert (again.status_code, again.json()) == (202, {"run": body["run"]})
    form = _post(hooks.url + "?wait=30", data={"name": "Bob", "message": "sales sales: a quote please"})
    assert form.status_code == 200 and form.json()["outputs"]["kind"]["label"] == "sales"
    assert daemon.stop() == 0
    runs = all_runs(hooks)
    assert len(runs) == 2 and {r.status for r in runs} == {RunStatus.SUCCEEDED}
    assert {r.trigger.value for r in runs} == {"hook"}
    first = min(runs, key=lambda r: r.id)
    assert first.context["hook"]["content_type"] == "application/json"
    assert json.loads(open(first.input_path, "rb").read()) == FORM  # the stored body, byte for byte


def test_too_large_is_413_and_nothing_is_stored(hooks):
    hooks.extra_env["GRISTMILL_MAX_FILE_BYTES"] = "1000"
    daemon = hooks.start()
    declared = _post(hooks.url, content=b"a" * 1001, headers={"Content-Type": "text/plain"})
    assert declared.status_code == 413 and "GRISTMILL_MAX_FILE_BYTES" in declared.json()["error"]

    def chunks():  # no Content-Length: the body is cut off while it streams in
        for _ in range(20):
            yield b"b" * 100

    streamed = _post(hooks.url, content=chunks(), headers={"Content-Type": "text/plain"})
    assert streamed.status_code == 413
    small = _post(hooks.url + "?wait=20", content=b"support " * 10, headers={"Content-Type": "text/plain"})
    assert small.status_code == 200
    assert daemon.stop() == 0
    assert len(all_runs(hooks)) == 1


def test_sigkill_right_after_the_202_loses_nothing(hooks, standin):
    standin.config.latency = 3.0  # the run is still in the model's hands when the daemon dies
    first = hooks.start()
    answer = _post(hooks.url, json=FORM)
    assert answer.status_code == 202
    run_id = answer.json()["run"]
    first.send(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    standin.config.latency = 0.0

    second = hooks.start()
    wait_for(lambda: [r.status for r in all_runs(hooks)] == [RunStatus.SUCCEEDED], timeout=DEADLINE,
             what="the acknowledged run to finish after the restart")  # fmt: skip
    assert second.stop() == 0
    (run,) = all_runs(hooks)
    assert run.id == run_id and run.outputs["kind"]["label"] == "support"


def test_hooks_stand_beside_the_dashboard_s_guard(hooks):
    dashboard = "dashboard-token-0123456789"
    hooks.extra_env["GRISTMILL_HTTP_TOKEN"] = dashboard
    daemon = hooks.start()
    base = hooks.url.rsplit("/hooks/", 1)[0]
    assert httpx.get(base + "/runs", timeout=30).status_code == 401  # the pages need the dashboard's token
    assert _post(hooks.url, token=dashboard, json=FORM).status_code == 401  # which opens no hook
    # No Origin, no session, no CSRF token, another Host: a form service's request, taken on its token.
    answer = _post(hooks.url + "?wait=30", json=FORM, headers={"Host": "hooks.example.org"})
    assert answer.status_code == 200, answer.text
    assert "set-cookie" not in answer.headers and answer.headers["cache-control"] == "no-store"
    assert daemon.stop() == 0
    assert dashboard not in daemon.log and TOKEN not in daemon.log


def test_a_reload_adds_and_removes_hook_routes(hooks):
    daemon = hooks.start()
    other = hooks.url.replace("form-triage", "alerts")
    assert _post(other, json=FORM).status_code == 404
    text = (hooks.workflows / "form-triage.yaml").read_text()
    path = hooks.write_workflow("alerts.yaml", text.replace("form-triage", "alerts"))
    wait_for(lambda: _post(other, json={"alert": "disk full"}).status_code == 202, timeout=DEADLINE,
             what="the new hook after the reload")  # fmt: skip
    path.unlink()
    wait_for(lambda: _post(other, json={"alert": "again"}).status_code == 404, timeout=DEADLINE,
             what="the hook to go with its file")  # fmt: skip
    assert _post(hooks.url, json=FORM).status_code == 202  # the other hook stayed
    assert daemon.stop() == 0
