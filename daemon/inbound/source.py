"""The HTTP hook trigger's source of runs: which path belongs to which workflow, and queuing a body once.

A body is stored durably in the inbound spool before its run is queued, and the request is answered
only after both: a SIGKILL right after the `202` loses nothing. The run's dedupe key is the body's
sha256, so the same content twice is one run (the first one's id is answered). The requests are
served on the dashboard's web server (`GRISTMILL_HTTP`), which mounts `web_mount()`: one POST route
per http workflow (`routes.py`), outside the dashboard's own guard.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from daemon.domain import Origin, Run
from daemon.inbound.hook import HookBody, HookLimits
from daemon.inbound.spec import CONTEXT_KEY, PREFIX, HttpTrigger
from daemon.inbound.spool import InboundSpool
from daemon.triggers.base import TriggerServices, TriggerSource, WebMount
from daemon.workflow import Workflow

log = logging.getLogger("gristmill")


class HookSource(TriggerSource):
    """The hook paths of the loaded http workflows; the requests themselves are handled by `routes.py`."""

    def __init__(self, services: TriggerServices) -> None:
        self.services = services
        self.spool = InboundSpool(services.settings.data_dir)
        self.limits = HookLimits(services.settings.max_file_bytes)
        self._paths: dict[str, str] = {}  # hook path → workflow name
        self._lock = threading.RLock()  # configure and web_mount build routes, which read paths(), under it
        self._router: Any = None  # the Starlette router the dashboard mounted, once it asked for it

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
            if self._router is not None:
                from daemon.inbound.routes import hook_routes

                self._router.routes = hook_routes(self)  # a reload: the mounted router follows at once

    def start(self) -> None:
        self.spool.sweep()
        if self._paths and self.services.settings.http_address is None:
            log.warning("hooks are loaded (%s) but GRISTMILL_HTTP is off, so none is served",
                        ", ".join(sorted(self._paths)))  # fmt: skip

    def web_mount(self) -> WebMount:
        from daemon.inbound.routes import hook_router  # the web stack loads with the dashboard, not before

        with self._lock:
            if self._router is None:
                self._router = hook_router(self)
        return WebMount(PREFIX, self._router)

    def alive(self) -> bool:
        return True  # nothing of its own runs: the dashboard's server serves the hooks

    def stop(self) -> None:
        """Nothing to stop: requests end with the dashboard's server."""

    def paths(self) -> dict[str, str]:
        """Each served hook path and its workflow's name."""
        with self._lock:
            return dict(self._paths)

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


def hook_context(spec: HttpTrigger, body: HookBody) -> dict[str, Any]:
    """What the run records of the request: never its headers (the token), only what the body is."""
    return {
        "path": spec.path, "kind": body.kind.value, "content_type": body.content_type,
        "filename": body.filename, "fields": dict(body.fields),
    }  # fmt: skip
