"""A bound on model calls in flight, in front of any backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from daemon.domain import ModelCall
from daemon.llm.base import ModelBackend, ModelInfo


class Limited(ModelBackend):
    """At most `slots` chats in flight at once (GRISTMILL_CONCURRENCY); the rest wait their turn.

    Workers outnumber the slots by one, so that while a run is filing its file and recording its
    outcome, another run already holds the model: the model, not the daemon, sets the pace.
    """

    def __init__(self, inner: ModelBackend, slots: int) -> None:
        self.inner, self.url = inner, inner.url
        self._slots = threading.BoundedSemaphore(slots)

    def chat(self, call: ModelCall, *, think: bool | None = None) -> ModelCall:
        with self._slots:
            return self.inner.chat(call, think=think)

    def list_models(self) -> list[str]:
        return self.inner.list_models()

    def info(self, model: str) -> ModelInfo:
        return self.inner.info(model)

    @contextmanager
    def spare_slot(self) -> Iterator[ModelBackend | None]:
        """The backend behind a slot that is free now (held until the block ends), or None: never waits.

        For shadow calls: they take a slot only when one is free, so a run's call never queues
        behind one that was waiting.
        """
        if not self._slots.acquire(blocking=False):
            yield None
            return
        try:
            yield self.inner
        finally:
            self._slots.release()
