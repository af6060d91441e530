"""uvicorn's server, asleep while idle: it wakes for a request or a stop, never on a timer."""

from __future__ import annotations

import asyncio
import threading
from email.utils import formatdate
from typing import Any

import uvicorn

Scope = dict[str, Any]


class CalmServer(uvicorn.Server):
    """uvicorn wakes ten times a second to look for a stop and refresh its Date header.

    An idle daemon should stay idle (that tick was a third of its CPU with the dashboard on,
    BENCHMARKS.md): the loop waits for `exit()` instead, and each response gets its own Date
    (`Dated`, with uvicorn's own header off).
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._exit = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        if not self.should_exit:
            await self._exit.wait()

    def exit(self) -> None:
        """Stop serving; from any thread."""
        self.should_exit = True
        if self._ready.is_set() and self._loop is not None and self._exit is not None:
            try:
                self._loop.call_soon_threadsafe(self._exit.set)
            except RuntimeError:  # the loop has closed: the server is done already
                pass


class Dated:
    """ASGI middleware: a Date header on every response, stamped when it starts."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                date = formatdate(usegmt=True).encode()
                message = {**message, "headers": [*message.get("headers", ()), (b"date", date)]}
            await send(message)

        await self.app(scope, receive, stamped)
