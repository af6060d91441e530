"""`trigger: {watch: {path: ~/Inbox, ...}}`: the watch kind, what the workflow file and `gristmill check` see of it.

The files themselves are found, settled and handed to intake by its source, `Watcher` (watch.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from daemon.triggers.base import Finding, Level, Reach, TriggerKind, TriggerServices
from daemon.triggers.roots import absolute_folder
from daemon.triggers.watch import Watch, Watcher
from daemon.workflow import WatchTrigger, Workflow
from daemon.workflow.fields import problem


class WatchKind(TriggerKind):
    """`trigger: {watch: {path: ~/Inbox, ...}}`: a run for each file that settles in a folder."""

    name = "watch"
    Spec = WatchTrigger
    moves_failed_files = True

    def source(self, services: TriggerServices) -> Watcher:
        # Paced where workers of its own share the CPU and the write lock with intake; an intake node
        # queues at full speed (the workers elsewhere take turns on the database, not on this process).
        paced = services.store.queued_from if services.settings.role.works else None
        return Watcher(services.intake, rescan_seconds=services.settings.rescan_seconds, queued_from=paced)

    def describe(self, spec: WatchTrigger) -> str:
        patterns = ",".join(spec.patterns) or "*"
        return f"watch {spec.path} ({patterns}{', recursive' if spec.recursive else ''})"

    def reach(self, spec: WatchTrigger) -> Reach:
        return Reach(absolute_folder(spec.path), spec.recursive)

    def wants(self, workflow: Workflow, path: Path) -> bool:
        return Watch.of(workflow).matcher.wants(path)

    def diagnose(self, workflows: list[Workflow]) -> list[Finding]:
        roots = [(w.name, absolute_folder(w.trigger.spec.path)) for w in sorted(workflows, key=lambda w: w.name)]
        says = "workflow {}: the watched folder {} does not exist yet; gristmill run creates it"
        return [Finding(Level.OK, says.format(name, root)) for name, root in roots if not os.path.lexists(root)]

    def check(self, workflow: Workflow) -> None:
        super().check(workflow)
        root = absolute_folder(workflow.trigger.spec.path)
        if os.path.lexists(root) and not root.is_dir():
            raise problem("watch_path", "{root} is a file, not a folder; path names the folder to watch",
                          ("trigger", "watch", "path"), root=str(root))  # fmt: skip
