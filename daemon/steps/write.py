"""The `write` step: render `content` into a new file at `path` (suffixed on collision, never overwriting)."""

from __future__ import annotations

from typing import Any

from daemon.files.paths import confine, folder_template
from daemon.steps.base import StepContext, StepKind, StepResult
from daemon.workflow.fields import StrictModel, TemplateSource, TemplateStr
from daemon.workflow.templates import render


class WriteSpec(StrictModel):
    """Render `content` into the file at `path`."""

    path: TemplateStr
    content: TemplateSource


class Write(StepKind):
    name = "write"
    Spec = WriteSpec

    def run(self, spec: WriteSpec, ctx: StepContext) -> StepResult:
        path = confine(render(spec.path, ctx.scope), spec.path)
        content = render(spec.content, ctx.scope)
        return StepResult({"path": str(ctx.act.effects.write(path, content))})

    def writes_into(self, spec: Any) -> list[str]:
        return [folder_template(spec.path)]
