"""An example gristmill plugin: a `shout` step kind and a `stamp` route action."""

from typing import Any

from daemon.actions import Done, RouteAction
from daemon.plugins import Registry
from daemon.steps import StepContext, StepKind, StepResult
from daemon.workflow.fields import StrictModel, TemplateStr
from daemon.workflow.templates import render


class ShoutSpec(StrictModel):
    text: TemplateStr = "{{ file.name }}"


class Shout(StepKind):
    """`- shout: {text: "{{ file.stem }}"}`: the rendered text in capitals; no model call."""

    name = "shout"
    Spec = ShoutSpec

    def run(self, spec: ShoutSpec, ctx: StepContext) -> StepResult:
        return StepResult({"text": render(spec.text, ctx.scope).upper()})


class Stamp(RouteAction):
    """`invoice: {stamp: paid}`: writes `<file>.stamp` beside the file (never overwriting)."""

    name = "stamp"

    def perform(self, target: Any, ctx: StepContext) -> Done:
        beside = ctx.file_path.with_name(ctx.file_path.name + ".stamp")
        return Done(str(ctx.act.effects.write(beside, f"{target}\n")))


def register(registry: Registry) -> None:
    registry.add_step(Shout())
    registry.add_action(Stamp())
