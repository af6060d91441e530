"""One configured model server as the router sees it: its backend, slots, outage state and model list."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from daemon.engine.outage import OutageGate
from daemon.errors import ModelError
from daemon.llm.base import ModelBackend, listed
from daemon.llm.servers import ServerKind
from daemon.settings import ServerConfig


class Upstream:
    """A server: `busy` of its `slots` in use (guarded by the router's lock), `gate` its outage state.

    Its model list is read again when older than `list_seconds` (a pull, or models loaded or removed
    by hand, show up without a restart) and right after the server comes back.
    """

    def __init__(
        self,
        config: ServerConfig,
        kind: ServerKind,
        backend: ModelBackend,
        gate: OutageGate,
        *,
        list_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.kind, self.backend, self.gate = config, kind, backend, gate
        self.name, self.slots, self.list_seconds, self.clock = config.name, config.slots, list_seconds, clock
        self.busy = 0
        self._models: list[str] | None = None  # None: never listed
        self._listed_at = float("-inf")
        self._listing = threading.Lock()

    @property
    def models(self) -> list[str]:
        """The model names of the last list (empty before the first)."""
        return list(self._models or ())

    def lists(self, model: str) -> bool | None:
        """Whether the server has `model` by its last list; None when it was never listed."""
        names = self._models
        return None if names is None else listed(model, names)

    def refresh(self, max_age: float | None = None) -> None:
        """Read the model list again when it is older than `max_age`; one thread at a time, never while down.

        A failed listing keeps the old list and waits `list_seconds` before the next try; the next call
        to the server finds out whether it is away.
        """
        age = self.list_seconds if max_age is None else max_age
        if self.clock() - self._listed_at < age or self.gate.is_down:
            return
        if not self._listing.acquire(blocking=False):
            return  # another thread is listing it right now
        try:
            self._models = self.backend.list_models()
        except ModelError:
            pass
        finally:
            self._listed_at = self.clock()
            self._listing.release()

    def stale(self) -> None:
        """Read the list again at the next chance (the server came back, or lacked a model it listed)."""
        self._listed_at = float("-inf")

    def free(self) -> bool:
        return self.busy < self.slots

    def load(self) -> float:
        """Share of the slots in use."""
        return self.busy / self.slots
