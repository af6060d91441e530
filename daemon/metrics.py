"""Prometheus metrics (SPEC §9) in a registry of our own, and the two hooks the engine calls.

`run_finished()` and `model_call()` are called where a run ends and where a model call is
recorded. They cost next to nothing: until the dashboard's thread has imported prometheus_client
and installed a `Metrics`, events wait in a short list (replayed on install) or, when no dashboard
is coming (`GRISTMILL_HTTP=off`, `run --once`, the CLI), are dropped.

Counters count what this process did; `gristmill web`, which does no work, exports the queue depth
and the servers' state only. Labels stay few: workflows, statuses, servers and models.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from daemon.domain import ModelCall, Run, RunStatus

log = logging.getLogger("gristmill")

SERVER = "local"  # the server of a call recorded without one (none was reached, or an old record)
RUN_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
PENDING_MAX = 10_000  # events kept while the dashboard's thread starts


class Metrics:
    """The instruments of SPEC §9; `queue_depth` and `servers_up` are asked at each scrape."""

    def __init__(
        self, *, queue_depth: Callable[[], Mapping[str, int]], servers_up: Callable[[], Mapping[str, bool]]
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

        disable_created_metrics()  # the *_created series double the output and tell a scraper nothing it needs
        self.registry = CollectorRegistry()
        self.runs = Counter("gristmill_runs", "Runs that ended, by workflow and status.",
                            ["workflow", "status"], registry=self.registry)  # fmt: skip
        self.run_duration = Histogram("gristmill_run_duration_seconds", "Time a run took, from claim to end.",
                                      buckets=RUN_BUCKETS, registry=self.registry)  # fmt: skip
        self.calls = Counter("gristmill_model_calls", "Model calls, by server, model and outcome (ok, error).",
                             ["server", "model", "outcome"], registry=self.registry)  # fmt: skip
        self.call_duration = Histogram("gristmill_model_call_duration_seconds", "Wall time of a model call.",
                                       ["server", "model"], buckets=CALL_BUCKETS, registry=self.registry)  # fmt: skip
        self.tokens = Counter("gristmill_model_tokens", "Tokens sent (in) and generated (out).",
                              ["server", "model", "direction"], registry=self.registry)  # fmt: skip
        self.registry.register(_StateCollector(queue_depth, servers_up))

    def run_finished(self, workflow: str, status: RunStatus, seconds: float) -> None:
        """Count a run that ended."""
        self.runs.labels(workflow, RunStatus(status).value).inc()
        self.run_duration.observe(max(0.0, seconds))

    def model_call(self, call: ModelCall, server: str) -> None:
        """Count a recorded model call, its time and its tokens."""
        outcome = "ok" if call.error is None else "error"
        self.calls.labels(server, call.model, outcome).inc()
        if call.wall_ms is not None:
            self.call_duration.labels(server, call.model).observe(call.wall_ms / 1000)
        for direction, count in (("in", call.prompt_tokens), ("out", call.completion_tokens)):
            if count:
                self.tokens.labels(server, call.model, direction).inc(count)

    def exposition(self) -> tuple[bytes, str]:
        """The text format of every metric, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _StateCollector:
    """Gauges read at scrape time: queued runs per workflow, and whether each server is up."""

    def __init__(self, queue_depth: Callable[[], Mapping[str, int]], servers_up: Callable[[], Mapping[str, bool]]):
        self.queue_depth, self.servers_up = queue_depth, servers_up

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        depth = GaugeMetricFamily("gristmill_queue_depth", "Queued runs, by workflow.", labels=["workflow"])
        for workflow, count in sorted(self.queue_depth().items()):
            depth.add_metric([workflow], count)
        up = GaugeMetricFamily("gristmill_model_server_up", "1 when the model server answers.", labels=["server"])
        for server, is_up in sorted(self.servers_up().items()):
            up.add_metric([server], 1.0 if is_up else 0.0)
        return iter((depth, up))


class _Sink:
    """Where the hooks send events: the installed Metrics, a short wait list, or nowhere."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: Metrics | None = None
        self._pending: deque[tuple[str, tuple[Any, ...]]] | None = None

    def emit(self, name: str, *args: Any) -> None:
        with self._lock:
            if self._metrics is not None:
                getattr(self._metrics, name)(*args)
            elif self._pending is not None:
                self._pending.append((name, args))

    def expect(self) -> None:
        with self._lock:
            if self._metrics is None and self._pending is None:
                self._pending = deque(maxlen=PENDING_MAX)

    def install(self, metrics: Metrics | None) -> None:
        with self._lock:
            for name, args in self._pending or ():
                if metrics is not None:
                    getattr(metrics, name)(*args)
            self._metrics, self._pending = metrics, None


_sink = _Sink()


def expect() -> None:
    """A dashboard is starting: keep events until it installs its Metrics."""
    _sink.expect()


def install(metrics: Metrics | None) -> None:
    """Send events to `metrics` from now on (None: drop them), after those that waited."""
    _sink.install(metrics)


def run_finished(run: Run, status: RunStatus, seconds: float) -> None:
    """The engine's hook where a run ends."""
    _sink.emit("run_finished", run.workflow, status, seconds)


def model_call(run: Run, call: ModelCall, server: str | None = None) -> None:
    """The engine's hook where a model call is recorded: counted by the server that answered it, and logged."""
    server = server or call.server or SERVER
    _sink.emit("model_call", call, server)
    if not log.isEnabledFor(logging.DEBUG):
        return
    log.debug(
        "run %d step %s: model call to %s took %.0f ms (%s)", run.id, call.step_id, call.model, call.wall_ms or 0,
        "ok" if call.error is None else call.error,
        extra={"run_id": run.id, "workflow": run.workflow, "step": call.step_id, "server": server,
               "model": call.model, "duration_ms": call.wall_ms, "outcome": "ok" if call.error is None else "error"},
    )  # fmt: skip
