"""The HTTP hook trigger's source of runs: which path belongs to which workflow, and queuing a body once.

A body is stored durably in the inbound spool before its run is queued, and the request is answered
only after both: a SIGKILL right after the `202` loses nothing. The run's dedupe key is the body's
sha256, so the same content twice is one run (the first one's id is answered). The routes
(`hook_routes`) serve on the dashboard's web server when it runs; without it, on a small server of
their own at `GRISTMILL_HTTP` (started only while an http workflow is loaded).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from daemon.domain import Origin, Run
from daemon.inbound.hook import HookBody, HookLimits
from daemon.inbound.spec import CONTEXT_KEY, HttpTrigger
from daemon.inbound.spool import InboundSpool
from daemon.triggers.base import TriggerServices, TriggerSource
from daemon.workflow import Workflow

log = logging.getLogger("gristmill")


class HookSource(TriggerSource):
    """The hook paths of the loaded http workflows; the requests themselves are handled by `routes.py`."""

    def __init__(self, services: TriggerServices, *, serve_own: bool = True) -> None:
        self.services = services
        self.spool = InboundSpool(services.settings.data_dir)
        self.limits = HookLimits(services.settings.max_file_bytes)
        # False when the dashboard's web server mounts `hook_routes(self)` itself.
        self.serve_own = serve_own
        self._paths: dict[str, str] = {}  # hook path → workflow name
        self._lock = threading.Lock()
        self._server: Any = None  # a HookServer while serving on our own
        self._started = False

    def configure(self, workflows: list[Workflow]) -> None:
        paths: dict[str, str] = {}
        for workflow in sorted(workflows, key=lambda w: w.name):
            spec = workflow.trigger.spec
            if not isinstance(spec, HttpTrigger):
                continue
            taken = paths.setdefault(spec.path, workflow.name)
            if taken != workflow.name:
                log.error("workflow %s: the hook path %s is already served for workflow %s; give it its own path",
                          workflow.name, spec.path, taken)  # fmt: skip
        with self._lock:
            self._paths = paths
        if self._started:
            self._serve()

    def start(self) -> None:
        self._started = True
        self.spool.sweep()
        self._serve()

    def alive(self) -> bool:
        # A server that could not have its address said so once; the daemon runs on without hooks.
        return self._server is None or self._server.alive()

    def stop(self) -> None:
        self._started = False
        if self._server is not None:
            self._server.stop()
            self._server = None

    def workflow_at(self, path: str) -> Workflow | None:
        """The loaded workflow whose hook is at `path`, if any."""
        with self._lock:
            name = self._paths.get(path)
        return None if name is None else self.services.workflows().get(name)

    def accept(self, workflow: Workflow, body: HookBody) -> Run:
        """Store the body durably, then queue its run; the same content again gives the first run."""
        store = self.services.store
        spooled = self.spool.put(workflow.name, body.data, body.suffix)
        known = store.known(workflow.name, spooled.sha256)
        if known is not None:
            return known
        context = {CONTEXT_KEY: hook_context(workflow.trigger.spec, body)}
        run, created = self.services.intake.spooled(
            workflow, spooled, trigger=Origin.HOOK, dedupe_key=spooled.sha256, context=context
        )
        if created:
            log.info("hook %s: %d bytes (%s) queued as run %d", workflow.trigger.spec.path, spooled.size,
                     body.content_type, run.id)  # fmt: skip
        return run

    def run(self, run_id: int) -> Run:
        """The run as recorded now."""
        return self.services.store.get(run_id)

    def _serve(self) -> None:
        if not self.serve_own or self._server is not None or not self._paths:
            return
        address = self.services.settings.http_address
        if address is None:
            log.warning("hooks are loaded (%s) but GRISTMILL_HTTP is off, so none is served",
                        ", ".join(sorted(self._paths)))  # fmt: skip
            return
        from daemon.inbound.server import HookServer  # the web stack loads only when a hook is served

        server = HookServer(address, self)
        if server.start():
            self._server = server


def hook_context(spec: HttpTrigger, body: HookBody) -> dict[str, Any]:
    """What the run records of the request: never its headers (the token), only what the body is."""
    return {
        "path": spec.path, "kind": body.kind.value, "content_type": body.content_type,
        "filename": body.filename, "fields": dict(body.fields),
    }  # fmt: skip
