"""`trigger: {http: {path: /hooks/NAME, token_env: VAR}}`: each POSTed body is one run, stored before the 202."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from daemon.inbound.source import HookSource
from daemon.inbound.spec import CONTEXT_KEY, HttpTrigger
from daemon.settings import read_secret
from daemon.triggers.base import Finding, Level, TriggerKind, TriggerServices
from daemon.workflow import Workflow

INPUT = "input"  # the template name: input.json, input.content_type, input.filename, input.fields


class HttpKind(TriggerKind):
    """One run per distinct body; templates see the body as `file`, and `input` (`input.json` for JSON)."""

    name = "http"
    Spec = HttpTrigger
    takes_file = True
    scope_names = frozenset({INPUT})

    def __init__(self, getenv: Callable[[str], str | None] = read_secret) -> None:
        self.getenv = getenv

    def source(self, services: TriggerServices) -> HookSource:
        return HookSource(services)

    def describe(self, spec: HttpTrigger) -> str:
        state = "" if self.getenv(spec.token_env) else ", unset: every request refused"
        return f"http POST {spec.path} (token in {spec.token_env}{state})"

    def template_scope(self, context: Mapping[str, Any], file: Path | None) -> Mapping[str, Any]:
        hook = context.get(CONTEXT_KEY)
        hook = dict(hook) if isinstance(hook, Mapping) else {}
        scope = {name: hook.get(name) for name in ("content_type", "filename", "kind")}
        scope["fields"] = hook.get("fields") or {}
        scope["json"] = _json_of(file) if hook.get("kind") == "json" else None
        return {INPUT: scope}

    def diagnose(self, workflows: list[Workflow]) -> list[Finding]:
        """Each hook's token variable set; no path served for two workflows."""
        found: list[Finding] = []
        paths: dict[str, str] = {}
        for workflow in sorted(workflows, key=lambda w: w.name):
            spec: HttpTrigger = workflow.trigger.spec
            other = paths.setdefault(spec.path, workflow.name)
            if other != workflow.name:
                found.append(Finding(Level.INVALID, f"workflow {workflow.name}: the hook path {spec.path} is "
                                     f"already taken by workflow {other}; give each hook its own path"))  # fmt: skip
            elif not self.getenv(spec.token_env):
                found.append(Finding(Level.WARNING, f"workflow {workflow.name}: {spec.token_env} is not set, so "
                                     f"the hook {spec.path} refuses every request (401) until it is"))  # fmt: skip
            else:
                found.append(Finding(Level.OK, f"workflow {workflow.name}: hook POST {spec.path}, token from "
                                     f"{spec.token_env}"))  # fmt: skip
        return found


def _json_of(file: Path | None) -> Any:
    """The stored JSON body, parsed; None when it can no longer be read."""
    if file is None:
        return None
    try:
        return json.loads(file.read_bytes())
    except (OSError, ValueError):
        return None
