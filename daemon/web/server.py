"""The dashboard's server: its socket bound at start, uvicorn and Starlette on a thread of their own.

Binding first, on the caller's thread, makes "address already in use" one log line at once; the web
stack is imported on the thread once `begin()` is called (the daemon calls it when it is ready), so
start-up never waits for it, not even for the GIL. Connections that arrive meanwhile wait in the
socket's backlog; runs that end meanwhile are counted when the metrics are installed.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from typing import Any

from daemon import metrics
from daemon.errors import UsageError
from daemon.settings import Settings
from daemon.web.address import HttpAddress
from daemon.web.source import DashboardSource

log = logging.getLogger("gristmill")

STOP_TIMEOUT = 5.0


def check_exposure(settings: Settings) -> HttpAddress | None:
    """Where to listen; UsageError (exit 2) for an address beyond loopback without a token."""
    address = settings.http_address
    if address is not None and settings.http_token is None and not address.is_loopback():
        raise UsageError(
            f"GRISTMILL_HTTP={address} is reachable from other machines; set GRISTMILL_HTTP_TOKEN "
            "(16 characters or more) or listen on 127.0.0.1"
        )
    return address


class DashboardServer:
    """Serves `source` at `address` until stopped."""

    def __init__(self, address: HttpAddress, source: DashboardSource, *, token: str | None) -> None:
        self.address, self.source, self.token = address, source, token
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._stopping = threading.Event()
        self._begin = threading.Event()

    def start(self) -> bool:
        """Bind and start serving; False (and one log line) when the address cannot be had."""
        try:
            self._socket = _listen(self.address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                log.warning("the dashboard's address %s is in use (another gristmill on this host?); "
                            "running on without the page", self.address)  # fmt: skip
            else:
                log.warning("the dashboard cannot listen on %s (%s); running on without the page",
                            self.address, exc.strerror or exc)  # fmt: skip
            return False
        metrics.expect()
        self._thread = threading.Thread(target=self._serve, name="dashboard", daemon=True)
        self._thread.start()
        log.info("dashboard and metrics at %s", self.address.url)
        return True

    def begin(self) -> None:
        """Load the web stack and serve (until now, connections wait in the backlog)."""
        self._begin.set()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop serving and release the address."""
        self._stopping.set()
        self._begin.set()
        if self._server is not None:
            self._server.exit()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        metrics.install(None)

    def _serve(self) -> None:
        self._begin.wait()
        if self._stopping.is_set():
            return
        try:
            import uvicorn

            from daemon.web.app import build_app
            from daemon.web.calm import CalmServer, Dated

            recorder = metrics.Metrics(queue_depth=self.source.queue_depth, servers_up=self.source.servers_up)
            metrics.install(recorder)
            app = build_app(self.source, recorder, token=self.token, host=self.address.host)
            config = uvicorn.Config(
                Dated(app), log_config=None, access_log=False, lifespan="off", loop="asyncio", http="h11", ws="none",
                server_header=False, date_header=False, timeout_graceful_shutdown=2,
            )  # fmt: skip
            self._server = CalmServer(config)
            if not self._stopping.is_set():
                self._server.run(sockets=[self._socket])
        except Exception:  # the page is not worth the daemon: log it and let the work go on
            log.exception("the dashboard stopped with an error; the daemon runs on without it")


def _listen(address: HttpAddress) -> socket.socket:
    family, kind, proto, _, where = socket.getaddrinfo(
        address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart reuses a port in TIME_WAIT
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(where)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def start_dashboard(app: Any) -> DashboardServer | None:
    """`gristmill run`'s dashboard over the running daemon (`app`: daemon.app.App); None when off or not had."""
    from daemon.web.source import DaemonSource

    address = check_exposure(app.settings)
    if address is None:
        return None
    token = app.settings.http_token.get_secret_value() if app.settings.http_token else None
    server = DashboardServer(address, DaemonSource(app), token=token)
    return server if server.start() else None
