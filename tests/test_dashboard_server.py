"""The dashboard's server and guard: settings, exposure, token, Host and origin checks, /healthz, `gristmill web`.

In-process tests drive the real Starlette app through Starlette's test client over a real SQLite
file; the rest run the real CLI in a subprocess.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from daemon.health import Health
from daemon.metrics import Metrics
from daemon.settings import load_settings
from daemon.store import RunStore, make_engine
from daemon.store.migrate import upgrade
from daemon.web.address import HttpAddress
from daemon.web.app import build_app
from daemon.web.server import DashboardServer
from daemon.web.source import DatabaseSource
from tests.dashboard_support import serve, wait_finished
from tests.support import INVOICE, free_port, make_home, wait_for
from tests.test_crash import fast_home

TOKEN = "a-long-enough-test-token-1234"


class FailingDatabase(DatabaseSource):
    """The same source with a database check that fails, as a vanished volume would."""

    def health(self) -> Health:
        def database() -> bool:
            raise OSError("disk I/O error")

        return Health({"database": database, "workflows": lambda: True})


def _source(tmp_path: Path, monkeypatch, source_class=DatabaseSource) -> DatabaseSource:
    """A dashboard source over a fresh database in `tmp_path`, with a model server that refuses."""
    monkeypatch.setenv("GRISTMILL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GRISTMILL_WORKFLOWS", str(tmp_path / "workflows"))
    settings = load_settings()
    engine = make_engine(settings.db_url)
    upgrade(engine)
    return source_class(settings, RunStore(engine), probe=lambda url: "ConnectError: refused")


def _client(tmp_path: Path, monkeypatch, *, token: str | None = None, source_class=DatabaseSource) -> TestClient:
    source = _source(tmp_path, monkeypatch, source_class)
    metrics = Metrics(queue_depth=source.queue_depth, servers_up=source.servers_up)
    app = build_app(source, metrics, token=token, host="127.0.0.1")
    return TestClient(app, base_url="http://127.0.0.1:8377", follow_redirects=False)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', html).group(1)


def test_headers_on_every_response_and_no_foreign_hosts(tmp_path, monkeypatch):
    client = _client(tmp_path, monkeypatch)
    for path in ("/", "/runs", "/workflows", "/evals", "/runs/99", "/static/app.css", "/nope"):
        response = client.get(path)
        assert response.headers["content-security-policy"].startswith("default-src 'self'"), path
        assert response.headers["referrer-policy"] == "same-origin", path
    assert client.get("/runs/99").status_code == 404
    assert "down" in client.get("/").text  # the probe said the model server is not there
    # DNS rebinding: a page elsewhere that resolves its own name to 127.0.0.1 gets nothing.
    assert client.get("/", headers={"host": "evil.example:8377"}).status_code == 421
    assert client.get("/", headers={"host": "localhost:8377"}).status_code == 200


def test_a_post_needs_the_same_origin_and_the_token(tmp_path, monkeypatch):
    client = _client(tmp_path, monkeypatch)
    csrf = _csrf(client.get("/login").text)
    origin = {"origin": "http://127.0.0.1:8377"}
    assert client.post("/runs/1/retry", data={"csrf": csrf}).status_code == 403  # no Origin, no Referer
    assert client.post("/runs/1/retry", data={"csrf": csrf}, headers={"origin": "null"}).status_code == 403
    assert client.post("/runs/1/retry", data={}, headers=origin).status_code == 403
    assert (
        client.post("/runs/1/retry", data={"csrf": csrf}, headers=origin).status_code == 404
    )  # past the guard: no run 1
    assert client.post("/runs/1/retry", data={"csrf": csrf},
                       headers={"referer": "http://127.0.0.1:8377/runs/1"}).status_code == 404  # fmt: skip


def test_with_a_token_every_page_needs_it(tmp_path, monkeypatch):
    client = _client(tmp_path, monkeypatch, token=TOKEN)
    page = client.get("/runs?status=failed", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fruns%3Fstatus%3Dfailed"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/healthz").status_code == 200  # open: it names components, nothing more

    login = client.get("/login?next=/runs")
    origin = {"origin": "http://any-name-you-use:8377", "host": "any-name-you-use:8377"}
    form = {"csrf": _csrf(login.text), "next": "/runs", "token": "wrong"}
    assert client.post("/login", data=form, headers=origin).status_code == 401
    signed_in = client.post("/login", data=form | {"token": TOKEN}, headers=origin)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/runs"
    cookie = next(c for c in signed_in.headers.get_list("set-cookie") if c.startswith("gristmill_auth="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    assert client.get("/runs", headers={"accept": "text/html"}).status_code == 200
    escape = client.post("/login", data=form | {"token": TOKEN, "next": "//evil.example/"}, headers=origin)
    assert escape.headers["location"] == "/"


def test_healthz_names_what_does_not_answer(tmp_path, monkeypatch):
    assert _client(tmp_path, monkeypatch).get("/healthz").json() == {"status": "ok"}
    failing = _client(tmp_path, monkeypatch, source_class=FailingDatabase).get("/healthz")
    assert failing.status_code == 503
    assert failing.json() == {"status": "unhealthy", "failing": ["database (OSError: disk I/O error)"]}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("127.0.0.1:99999", "the port in '127.0.0.1:99999' must be a number from 1 to 65535"),
        ("localhost", "'localhost' is not HOST:PORT"),
        ("::1:8377", "has an IPv6 address without brackets"),
        ("0.0.0.0:8377", "GRISTMILL_HTTP=0.0.0.0:8377 is reachable from other machines; set GRISTMILL_HTTP_TOKEN"),
    ],
)
def test_bad_or_exposed_addresses_are_one_sentence_and_exit_2(tmp_path, standin, value, message):
    home = make_home(tmp_path, standin.url)
    for command in ("run", "web"):
        result = subprocess.run(
            [sys.executable, "-m", "daemon", command], env={**home.env, "GRISTMILL_HTTP": value},
            cwd=home.root, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2, (command, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_address_in_use_is_one_line_and_the_daemon_works_on(tmp_path, standin):
    home = fast_home(tmp_path, standin.url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        from tests.test_crash import Daemon

        daemon = Daemon(home, GRISTMILL_HTTP=f"127.0.0.1:{port}").start()
        try:
            wait_for(lambda: "gristmill ready" in daemon.log, timeout=60, what="the daemon to be ready")
            home.drop("invoice.txt", INVOICE)
            wait_finished(home, 1)
        finally:
            assert daemon.stop() == 0
    lines = [line for line in daemon.log.splitlines() if "in use" in line]
    assert len(lines) == 1 and f"127.0.0.1:{port} is in use" in lines[0] and "running on without the page" in lines[0]
    assert "Traceback" not in daemon.log


def test_gristmill_web_serves_the_database_alone(tmp_path, standin):
    home = fast_home(tmp_path, standin.url)
    home.drop("invoice.txt", INVOICE)
    home.cli("run", "--once", check=True)
    port = free_port()
    env = {**home.env, "GRISTMILL_HTTP": f"127.0.0.1:{port}"}
    web = subprocess.Popen([sys.executable, "-m", "daemon", "web"], env=env, cwd=home.root,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _get(base + "/healthz"), timeout=60, what="gristmill web to answer")
        page = httpx.get(base + "/runs").text
        assert "invoice.txt" in page and "read-only server" in page
        assert "sort-inbox" in httpx.get(base + "/workflows").text
        assert 'gristmill_model_server_up{server="local"} 1.0' in httpx.get(base + "/metrics").text
    finally:
        web.send_signal(signal.SIGTERM)
        _, err = web.communicate(timeout=30)
    assert web.returncode == 0, err
    assert "Traceback" not in err


def _get(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_dashboard_starts_with_the_daemon_and_stops_with_it(tmp_path, standin):
    home = fast_home(tmp_path, standin.url)
    daemon, base = serve(home)
    assert httpx.get(base + "/healthz").json() == {"status": "ok"}
    assert daemon.stop() == 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(base + "/healthz", timeout=2)


def test_the_idle_server_answers_with_a_date_and_stops_when_told(tmp_path, monkeypatch):
    # The server sleeps until a request or a stop (no tick): the stop must still wake it, and each
    # response still carries a current Date although uvicorn's own (refreshed by that tick) is off.
    server = DashboardServer(HttpAddress("127.0.0.1", free_port()), _source(tmp_path, monkeypatch), token=None)
    assert server.start()
    server.begin()
    try:
        wait_for(lambda: _get(server.address.url + "/healthz"), timeout=60, what="the dashboard to answer")
        answer = httpx.get(server.address.url + "/healthz")
        dates = answer.headers.get_list("date")
        assert len(dates) == 1
        assert abs((parsedate_to_datetime(dates[0]) - datetime.now(UTC)).total_seconds()) < 120
    finally:
        server.stop(timeout=30)
    assert not server.alive()
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.address.url + "/healthz", timeout=2)
