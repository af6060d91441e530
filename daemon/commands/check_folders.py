"""What `gristmill check` says about folders: those runs put files into, those two workflows take files from."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

from daemon.files.ops import blocking_file
from daemon.files.paths import static_base
from daemon.triggers.base import Finding, Level
from daemon.workflow import Workflow


def folder_findings(workflows: Iterable[Workflow]) -> list[Finding]:
    """Destinations a file stands in the way of (invalid), folders two workflows take files from (a warning)."""
    ordered = sorted(workflows, key=lambda w: w.name)
    return [*_blocked_destinations(ordered), *_shared_folders(ordered)]


def _blocked_destinations(workflows: list[Workflow]) -> list[Finding]:
    found = []
    for workflow in workflows:
        for template in dict.fromkeys(workflow.destinations()):
            folder = static_base(template).absolute()
            blocker = blocking_file(folder)
            if blocker is not None:
                where = f"{folder} is" if blocker == folder else f"{blocker} is in the way of {folder}:"
                found.append(Finding(Level.INVALID, (
                    f"workflow {workflow.name} puts files into {template}, but {where} a file, not a folder; "
                    f"move that file away or change the destination in {workflow.source or 'the workflow'}"
                )))  # fmt: skip
    return found


def _shared_folders(workflows: list[Workflow]) -> list[Finding]:
    """Two workflows that take files from the same folder, one of which moves them away."""
    reaching = [(w, w.trigger.kind.reach(w.trigger.spec)) for w in workflows]
    found = []
    for (a, reach_a), (b, reach_b) in combinations([(w, r) for w, r in reaching if r is not None], 2):
        if not reach_a.overlaps(reach_b):
            continue
        movers = [w.name for w in (a, b) if w.moves_files]
        if not movers:
            continue
        folder = min(reach_a.folder, reach_b.folder, key=lambda p: len(p.parts))
        who = " and ".join(movers)
        found.append(Finding(Level.WARNING, (
            f"workflows {a.name} and {b.name} both take files from {folder}, and {who} "
            f"{'move' if len(movers) > 1 else 'moves'} them away: each file is worked on by whichever run "
            "comes first, and the other workflow records it as skipped, naming the run that moved it"
        )))  # fmt: skip
    return found
