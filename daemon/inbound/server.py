"""The hooks' own small web server, for when the dashboard does not serve them: uvicorn on a thread.

The socket is bound on the caller's thread, so an address in use is one log line at once and the
daemon runs on without hooks; uvicorn and Starlette then serve `hook_app` on a thread of their own.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
from typing import TYPE_CHECKING, Any

from daemon.web.address import HttpAddress

if TYPE_CHECKING:
    from daemon.inbound.source import HookSource

log = logging.getLogger("gristmill")

STOP_TIMEOUT = 5.0
TICK = 1.0  # seconds between uvicorn's looks for a stop request: an idle daemon stays idle


class HookServer:
    """Serves the hook routes of `source` at `address` until stopped."""

    def __init__(self, address: HttpAddress, source: HookSource) -> None:
        self.address, self.source = address, source
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._stopping = threading.Event()

    def start(self) -> bool:
        """Bind and start serving; False (and one log line) when the address cannot be had."""
        try:
            self._socket = listen(self.address)
        except OSError as exc:
            why = "is in use (another gristmill on this host?)" if exc.errno == errno.EADDRINUSE else (
                f"cannot be had ({exc.strerror or exc})")  # fmt: skip
            log.warning("the hooks' address %s %s; running on without hooks", self.address, why)
            return False
        self._thread = threading.Thread(target=self._serve, name="hooks", daemon=True)
        self._thread.start()
        log.info("hooks served at %s/hooks/", self.address.url)
        return True

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop serving and release the address."""
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()

    def _serve(self) -> None:
        try:
            import uvicorn

            from daemon.inbound.routes import hook_app

            class CalmServer(uvicorn.Server):
                async def main_loop(self) -> None:  # uvicorn looks ten times a second by default
                    while not await self.on_tick(0):
                        await asyncio.sleep(TICK)

            config = uvicorn.Config(
                hook_app(self.source), log_config=None, access_log=False, lifespan="off", loop="asyncio",
                http="h11", ws="none", server_header=False, timeout_graceful_shutdown=2,
            )  # fmt: skip
            self._server = CalmServer(config)
            if not self._stopping.is_set():
                self._server.run(sockets=[self._socket])
        except Exception:  # hooks are not worth the daemon: log it and let the work go on
            log.exception("the hook server stopped with an error; the daemon runs on without hooks")


def listen(address: HttpAddress) -> socket.socket:
    """A listening TCP socket at `address` (IPv6 only when the address is IPv6)."""
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
