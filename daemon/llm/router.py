"""Routing model calls over every configured server: a `ModelBackend` for the runner, a `Gate` for the pool.

- `model: NAME` goes to any server that lists NAME, is up and has a free slot (a server whose probe
  is due first, so a returning server is noticed; then the least loaded); `NAME@SERVER` only to SERVER.
- A server that fails a call (unreachable, overloaded, not a model server) is marked down with its own
  backoff and the same call moves on to the next server that has the model, using no attempt. When
  none is left, `ModelUnavailable` says when one may be tried again: the run waits that long.
- A call that timed out while its server still answers a health probe is the model's fault, not an
  outage: a `ModelError` (an attempt) naming GRISTMILL_MODEL_TIMEOUT.
- Each call is recorded with the server that answered (`call.server`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from daemon.domain import ModelCall
from daemon.errors import ModelError, ModelMissing, ModelTimeout, ModelUnavailable
from daemon.llm.base import ModelBackend, ModelInfo
from daemon.llm.modelref import ModelRef, parse_model
from daemon.llm.upstream import Upstream

SLOT_WAIT = 1.0  # seconds between looks while every server with the model is busy (a release wakes sooner)
FRESH_LIST = 5.0  # a list older than this is read again before a model is called missing


class Router(ModelBackend):
    """Every configured server behind one `ModelBackend`; also the pool's view of their outages."""

    def __init__(self, upstreams: list[Upstream], *, model_timeout: float, cap: float = 60.0) -> None:
        self.upstreams, self.cap = upstreams, cap  # cap: the longest backoff (GRISTMILL_BACKOFF_MAX_SECONDS)
        self.by_name = {u.name: u for u in upstreams}
        self.model_timeout = model_timeout
        self.url = ", ".join(u.config.url for u in upstreams)
        self._cond = threading.Condition()
        self._permit = False  # the pool's one probe while every server is down

    @property
    def slots(self) -> int:
        """Calls in flight at once over all servers."""
        return sum(u.slots for u in self.upstreams)

    # -- ModelBackend -----------------------------------------------------------------------
    def chat(self, call: ModelCall, *, think: bool | None = None, wait: bool = True) -> ModelCall:
        """`wait=False`: only a slot that is free now (else ModelUnavailable), for shadow calls."""
        ref = parse_model(call.model)
        call.model, call.server = ref.name, ref.server
        tried: set[str] = set()
        missing: ModelMissing | None = None
        options = dict(call.options)  # as the asker gave them: each server adds its own num_ctx
        while True:
            try:
                upstream = self._take(ref, tried, wait=wait)
            except ModelError as exc:
                error = missing or exc  # a server that listed the model lacked it: that is the news
                call.error = error.message
                raise error from None
            call.server, call.error, call.options = upstream.name, None, dict(options)
            try:
                upstream.backend.chat(call, think=think)
            except ModelTimeout as exc:
                error = self._judge_timeout(upstream, ref, exc)
                self._release(upstream, None if error else exc.message)
                if error is not None:
                    call.error = error.message
                    raise error from exc
                tried.add(upstream.name)
            except ModelUnavailable as exc:
                self._release(upstream, exc.message)
                tried.add(upstream.name)
            except ModelMissing as exc:
                self._release(upstream, None)
                upstream.stale()
                tried.add(upstream.name)
                missing = exc
            except BaseException:
                self._release(upstream, None)  # the server answered: up, whatever the answer
                raise
            else:
                self._release(upstream, None)
                return call

    def has_model(self, model: str) -> bool:
        try:
            self._candidates(parse_model(model), set())
        except ModelError:
            return False
        return True

    @contextmanager
    def spare_slot(self) -> Iterator[ModelBackend | None]:
        """A backend whose calls take only a slot free at that moment (never wait), or None when none is free."""
        with self._cond:
            spare = any(u.free() and not u.gate.is_down for u in self.upstreams)
        yield _NoWait(self) if spare else None

    def list_models(self) -> list[str]:
        names: list[str] = []
        for upstream in self.upstreams:
            upstream.refresh()
            names += [n for n in upstream.models if n not in names]
        return names

    def info(self, model: str) -> ModelInfo:
        return self._ask_any(parse_model(model), lambda u, name: u.backend.info(name))

    def window(self, model: str, options: dict[str, Any]) -> int:
        """The smallest context among the servers that may answer: a plan that fits there fits anywhere."""
        ref = parse_model(model)
        windows = []
        for upstream in self._candidates(ref, set()):
            if upstream.gate.is_down:
                continue
            try:
                windows.append(upstream.backend.window(ref.name, options))
            except ModelUnavailable as exc:
                self._mark_down(upstream, exc.message)
            except ModelError:
                continue
        return min(windows) if windows else self._ask_any(ref, lambda u, name: u.backend.window(name, options))

    def version(self) -> str | None:
        return None

    def close(self) -> None:
        for upstream in self.upstreams:
            upstream.backend.close()

    # -- choosing a server ------------------------------------------------------------------
    def _take(self, ref: ModelRef, tried: set[str], *, wait: bool = True) -> Upstream:
        """A server for `ref` with a slot held; waits while all are busy (unless not `wait`); raises when none may."""
        candidates = [u for u in self._candidates(ref, tried) if u.name not in tried]
        with self._cond:
            while True:
                chosen, busy = self._choose(candidates)
                if chosen is not None:
                    chosen.busy += 1
                    if chosen.gate.is_down:
                        chosen.gate.may_call()  # this call is the server's one probe
                    return chosen
                if not busy:
                    raise self._unavailable(ref, tried)
                if not wait:
                    raise ModelUnavailable(f"no server that has '{ref}' has a free slot now", retry_after=SLOT_WAIT)
                self._cond.wait(SLOT_WAIT)

    @staticmethod
    def _choose(candidates: list[Upstream]) -> tuple[Upstream | None, bool]:
        """The server to use now, or (None, whether one will free a slot soon)."""
        due = [u for u in candidates if u.gate.is_down and u.gate.peek() == 0]
        up = [u for u in candidates if not u.gate.is_down]
        probe = next((u for u in due if u.free()), None)
        if probe is not None:
            return probe, True
        free = [u for u in up if u.free()]
        if free:
            return min(free, key=Upstream.load), True
        return None, bool(up or due)

    def _candidates(self, ref: ModelRef, tried: set[str]) -> list[Upstream]:
        """The servers that may have the model (listed, or not listed yet); ModelMissing when none has it."""
        pool = self._pool(ref)
        for upstream in pool:
            upstream.refresh()
        having = [u for u in pool if u.lists(ref.name) is not False]
        if not having and not tried:
            for upstream in pool:  # a pull may have just added it
                upstream.refresh(FRESH_LIST)
            having = [u for u in pool if u.lists(ref.name) is not False]
        if not having:
            raise self._missing(ref, pool)
        return having

    def _pool(self, ref: ModelRef) -> list[Upstream]:
        """The servers `ref` may run on: its pinned one, else all."""
        if ref.server is None:
            return self.upstreams
        if ref.server not in self.by_name:
            raise ModelError(f"'{ref.server}' in '{ref}' is not a configured model server; see gristmill models")
        return [self.by_name[ref.server]]

    def _mark_down(self, upstream: Upstream, reason: str) -> None:
        with self._cond:
            upstream.gate.down(reason)
            self._cond.notify_all()

    def _mark_up(self, upstream: Upstream) -> None:
        with self._cond:
            if upstream.gate.is_down:
                upstream.gate.up()
                upstream.stale()  # it may have other models now
            self._cond.notify_all()

    def _release(self, upstream: Upstream, failure: str | None) -> None:
        with self._cond:  # an RLock: the marks below take it again
            upstream.busy -= 1
            if failure is None:
                self._mark_up(upstream)
            else:
                self._mark_down(upstream, failure)

    def _judge_timeout(self, upstream: Upstream, ref: ModelRef, exc: ModelTimeout) -> ModelError | None:
        """A ModelError when the server still answers a health probe (the model is too slow); None: it is away."""
        try:
            upstream.backend.version()
        except ModelError:
            return None
        return ModelError(
            f"model '{ref.name}' on server '{upstream.name}' sent nothing for {self.model_timeout:g} s although the "
            "server answers; raise GRISTMILL_MODEL_TIMEOUT if the model is slow to load or to start answering, "
            "or choose a smaller model"
        )

    def _ask_any(self, ref: ModelRef, ask: Any) -> Any:
        """`ask(upstream, name)` of the first server that answers, up ones first, then down ones that are due."""
        last: ModelError | None = None
        for upstream in sorted(self._candidates(ref, set()), key=lambda u: u.gate.is_down):
            if upstream.gate.is_down and not upstream.gate.may_call()[0]:
                continue  # not due yet, or another thread probes it
            try:
                answer = ask(upstream, ref.name)
            except ModelUnavailable as exc:
                self._mark_down(upstream, exc.message)
                last = exc
                continue
            except ModelMissing as exc:
                last = exc
                continue
            finally:
                if upstream.gate.is_down:
                    upstream.gate.end_probe()  # a cached answer proves nothing: a call will probe it
            return answer
        if isinstance(last, ModelMissing):
            raise last
        raise self._unavailable(ref, set())

    def _unavailable(self, ref: ModelRef, tried: set[str]) -> ModelUnavailable:
        pool = self._pool(ref)
        down = [u for u in pool if u.gate.is_down and u.lists(ref.name) is not False]
        reasons = "; ".join(u.gate.reason or "" for u in down) or "every server that has it is busy"
        wait = min((u.gate.peek() for u in down), default=SLOT_WAIT)
        if len(pool) == 1:
            return ModelUnavailable(reasons, pool[0].config.url, retry_after=wait)
        return ModelUnavailable(f"no model server that has '{ref}' is up ({reasons})", retry_after=wait)

    def _missing(self, ref: ModelRef, pool: list[Upstream]) -> ModelMissing:
        if len(pool) == 1:
            (only,) = pool
            fix = f"run: gristmill pull {ref.name} --server {only.name}" if only.kind.pulls else only.kind.models_hint
            return ModelMissing(ref.name, only.config.url, where=f"the model server '{only.name}'", fix=fix)
        names = ", ".join(u.name for u in pool)
        return ModelMissing(ref.name, where=f"any model server ({names})", fix=f"run: gristmill pull {ref.name}")

    # -- the pool's view (daemon.engine.outage.Gate) -----------------------------------------
    @property
    def is_down(self) -> bool:
        return all(u.gate.is_down for u in self.upstreams)

    @property
    def partly_down(self) -> bool:
        return any(u.gate.is_down for u in self.upstreams)

    @property
    def reason(self) -> str | None:
        return "; ".join(u.gate.reason or "" for u in self.upstreams if u.gate.is_down) or None

    def may_call(self) -> tuple[bool, float]:
        with self._cond:
            if not self.is_down:
                return True, 0.0
            due = min(u.gate.peek() for u in self.upstreams)
            if due == 0 and not self._permit:
                self._permit = True
                return True, 0.0
            return False, max(due, 0.05)

    def down(self, reason: str, retry_after: float | None = None) -> float:
        with self._cond:
            self._permit = False
            if retry_after is not None:
                return retry_after
            return max(min((u.gate.peek() for u in self.upstreams), default=SLOT_WAIT), SLOT_WAIT)

    def up(self) -> None:
        self.end_probe()

    def end_probe(self) -> None:
        with self._cond:
            self._permit = False


class _NoWait(ModelBackend):
    """The router for calls that must not wait for a slot (shadow calls): a busy server is ModelUnavailable."""

    def __init__(self, router: Router) -> None:
        self.router, self.url = router, router.url

    def chat(self, call: ModelCall, *, think: bool | None = None) -> ModelCall:
        return self.router.chat(call, think=think, wait=False)

    def list_models(self) -> list[str]:
        return self.router.list_models()

    def info(self, model: str) -> ModelInfo:
        return self.router.info(model)

    def window(self, model: str, options: dict[str, Any]) -> int:
        return self.router.window(model, options)

    def version(self) -> str | None:
        return None
