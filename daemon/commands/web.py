"""`gristmill web`: the dashboard over the database alone, until SIGTERM or Ctrl-C."""

from __future__ import annotations

from daemon.errors import UsageError
from daemon.lifecycle import Lifecycle
from daemon.settings import Settings
from daemon.store import RunStore, make_engine
from daemon.store.migrate import upgrade
from daemon.web.server import DashboardServer, check_exposure
from daemon.web.source import DatabaseSource


def serve_web(settings: Settings) -> None:
    """Serve until asked to stop; UsageError when GRISTMILL_HTTP is off or cannot be listened on."""
    address = check_exposure(settings)
    if address is None:
        raise UsageError("GRISTMILL_HTTP is off; set it to HOST:PORT (default 127.0.0.1:8377) to serve the dashboard")
    life = Lifecycle()
    life.install()
    engine = make_engine(settings.db_url)
    upgrade(engine)
    token = settings.http_token.get_secret_value() if settings.http_token else None
    server = DashboardServer(address, DatabaseSource(settings, RunStore(engine)), token=token)
    if not server.start():
        engine.dispose()
        raise UsageError(f"nothing was served: {address} cannot be listened on (see the line above)")
    server.begin()
    try:
        while not life.stopping and server.alive():
            life.wait(5.0)
    finally:
        server.stop()
        engine.dispose()
