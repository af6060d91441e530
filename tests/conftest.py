"""Shared pytest fixtures.

`standin` gives each test its own Ollama stand-in (daemon.standin) on 127.0.0.1 and a free
port: point `ollama.Client(host=standin.url, timeout=10)` at it, steer it through
`standin.config` (latency, slots, fail_next, quirks, models...) and read `standin.requests`.
"""

import os
from dataclasses import dataclass

import pytest

from daemon.standin import StandinConfig, StandinServer
from daemon.store import RunStore, make_engine
from daemon.store.migrate import upgrade


@pytest.fixture
def standin():
    """A running Ollama stand-in on a free loopback port, stopped after the test."""
    server = StandinServer().start()
    try:
        yield server
    finally:
        server.stop()


# --- a model server: the stand-in (both APIs) always, and real servers when their URLs are set ---

REAL_OLLAMA_URL = os.environ.get("GRISTMILL_TEST_OLLAMA_URL")
REAL_OLLAMA_MODEL = os.environ.get("GRISTMILL_TEST_MODEL", "llama3.2")
REAL_OPENAI_URL = os.environ.get("GRISTMILL_TEST_OPENAI_URL")  # ends in /v1
REAL_OPENAI_MODEL = os.environ.get("GRISTMILL_TEST_OPENAI_MODEL", REAL_OLLAMA_MODEL)


@dataclass(frozen=True)
class ModelServer:
    """Where model-facing tests send their calls, which model they ask, and which kind of server it is."""

    url: str
    model: str
    real: bool
    kind: str = "ollama"


@pytest.fixture(params=["standin", "standin-openai", "real-ollama", "real-openai"])
def model_server(request):
    """Each model-facing test runs against the stand-in's two APIs and, when configured, real servers."""
    if request.param.startswith("real-"):
        kind = request.param.removeprefix("real-")
        url, model = (REAL_OLLAMA_URL, REAL_OLLAMA_MODEL) if kind == "ollama" else (REAL_OPENAI_URL, REAL_OPENAI_MODEL)
        if not url:
            variable = "GRISTMILL_TEST_OLLAMA_URL" if kind == "ollama" else "GRISTMILL_TEST_OPENAI_URL"
            pytest.skip(f"set {variable} to run this against a real server too")
        yield ModelServer(url.rstrip("/"), model, real=True, kind=kind)
        return
    openai_only = request.param == "standin-openai"
    server = StandinServer(StandinConfig(api="openai" if openai_only else "both")).start()
    try:
        url = f"{server.url}/v1" if openai_only else server.url
        yield ModelServer(url, "llama3.2", real=False, kind="openai" if openai_only else "ollama")
    finally:
        server.stop()


# --- a real IMAP server (Debian's dovecot-imapd) on loopback, for the mailbox trigger ---


@pytest.fixture
def dovecot():
    """A running private Dovecot (see tests/dovecot.py); stopped and deleted after the test."""
    from tests.dovecot import Dovecot

    server = Dovecot.create()
    try:
        yield server.start()
    finally:
        server.remove()


# --- PostgreSQL: one real server for the session, an empty database per test ---


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL cluster on a free loopback port (tests/pgserver.py), removed at the end.

    Missing binaries fail the tests that need it: a skipped PostgreSQL test would hide a broken CI.
    """
    from tests.pgserver import PgServer, PgUnavailable

    try:
        server = PgServer().start()
    except PgUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server):
    """The SQLAlchemy URL of a new, empty PostgreSQL database, dropped after the test."""
    url = pg_server.database()
    try:
        yield url
    finally:
        pg_server.drop(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """The same test against a SQLite file and a PostgreSQL database (both blank)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def store(tmp_path):
    """A run store over a blank SQLite file (a test file may define its own `store` instead)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'gristmill.db'}")
    upgrade(engine)
    yield RunStore(engine)
    engine.dispose()
