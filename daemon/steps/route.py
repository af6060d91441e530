"""The `route` step: the action of the label a classify step chose (`default` and `review` otherwise)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, WrapValidator

from daemon.actions import Action, make_action, validate_action
from daemon.files.paths import confine
from daemon.steps.base import KeyPath, StepContext, StepKind, StepResult
from daemon.workflow.fields import StrictModel, problem
from daemon.workflow.templates import render

Declared = Annotated[Action, WrapValidator(lambda value, handler, info: validate_action(value, info))]


def _keep() -> Action:
    return make_action("keep", True)


class RouteSpec(StrictModel):
    """Choose an action by the label of the classify step `by`; without `by`, always `default`."""

    by: str | None = None
    routes: dict[str, Declared] = {}
    default: Declared = Field(default_factory=_keep)
    review: Declared | None = None

    def actions(self) -> list[tuple[KeyPath, Action]]:
        """Every action with its key path inside the spec."""
        found: list[tuple[KeyPath, Action]] = [(("routes", label), a) for label, a in self.routes.items()]
        found.append((("default",), self.default))
        if self.review is not None:
            found.append((("review",), self.review))
        return found

    def choose(self, decided: Mapping[str, Any]) -> tuple[Action, str]:
        """The action for the deciding step's output, and why (in words)."""
        label = decided.get("label")
        if label is not None and label in self.routes:
            return self.routes[label], f"label {label}"
        if self.review is not None and decided.get("reason"):
            return self.review, f"review: {decided['reason']}"
        return self.default, "default: " + (decided.get("reason") or f"no route for label {label}")


class Route(StepKind):
    name = "route"
    Spec = RouteSpec

    def run(self, spec: RouteSpec, ctx: StepContext) -> StepResult:
        decided = ctx.scope.get(spec.by) or {} if spec.by else {}
        action, why = spec.choose(decided)
        # Only folder templates are rendered, and confined; a workflow name or URL is used as written.
        target = action.target
        if action.kind.into_folder:
            target = str(confine(render(target, ctx.scope), target))
        done = action.kind.perform(target, ctx)
        output = {"action": action.name, "destination": done.destination, "label": decided.get("label"), "why": why}
        if done.note:
            output["note"] = done.note
        return StepResult(output, moved_to=done.moved_to)

    def actions(self, spec: RouteSpec) -> list[tuple[KeyPath, Action]]:
        return spec.actions()

    def decided_by(self, spec: RouteSpec) -> str | None:
        return spec.by

    def writes_into(self, spec: RouteSpec) -> list[str]:
        return [action.target for _, action in spec.actions() if action.kind.into_folder]

    def check(self, step: Any, at: KeyPath, earlier: Mapping[str, Any], later: list[str]) -> None:
        spec: RouteSpec = step.spec
        if spec.by is None:
            if spec.routes or spec.review is not None:
                raise problem("route_by", "routes and review need by: the id of an earlier classify step", at + ("by",))
            return
        source = earlier.get(spec.by)
        if source is None:
            why = "comes after this route" if spec.by in later else "does not exist"
            deciding = [f"'{sid}'" for sid, s in earlier.items() if s.kind.labels(s.spec) is not None]
            hint = f"such as {', '.join(deciding)}" if deciding else "and there is none yet"
            raise problem(
                "route_by",
                "step '{by}' {why}; by names a classify step before this route, {hint}",
                at + ("by",),
                by=spec.by,
                why=why,
                hint=hint,
            )
        labels = source.kind.labels(source.spec)
        if labels is None:
            raise problem(
                "route_by",
                "step '{by}' is of kind {kind}; by names a classify step",
                at + ("by",),
                by=spec.by,
                kind=source.kind.name,
            )
        for label in spec.routes:
            if label not in labels:
                near = [known for known in labels if known.casefold() == label.strip().casefold()]
                hint = f"did you mean '{near[0]}'?" if near else f"the labels are {', '.join(labels)}"
                raise problem(
                    "route_label",
                    "'{label}' is not a label of step '{by}'; {hint}",
                    at + ("routes", label),
                    label=label,
                    by=spec.by,
                    hint=hint,
                )
