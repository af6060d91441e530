"""Shared pytest fixtures.

`standin` gives each test its own Ollama stand-in (daemon.standin) on 127.0.0.1 and a free
port: point `ollama.Client(host=standin.url, timeout=10)` at it, steer it through
`standin.config` (latency, slots, fail_next, quirks, models...) and read `standin.requests`.
"""

import pytest

from daemon.standin import StandinServer


@pytest.fixture
def standin():
    """A running Ollama stand-in on a free loopback port, stopped after the test."""
    server = StandinServer().start()
    try:
        yield server
    finally:
        server.stop()
