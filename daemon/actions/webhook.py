"""The `webhook` route action: POST the run's outputs as JSON to a fixed, checked address."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import AfterValidator

from daemon.actions.base import Done, RouteAction
from daemon.netguard import Network, check_url
from daemon.steps import StepContext
from daemon.workflow import Workflow
from daemon.workflow.fields import problem


def _http_url(value: str) -> str:
    if not re.match(r"^https?://\S+$", value):
        raise problem("webhook", "'{url}' is not an http:// or https:// address", url=value)
    if "{{" in value or "{%" in value:
        # Nothing a document or a model says may become a URL: webhook targets are fixed.
        raise problem(
            "webhook",
            "'{url}' uses a template; a webhook address is fixed text, so no document or "
            "model answer can change where data is sent",
            url=value,
        )
    return value


def check_webhook(url: str, workflow: Workflow, local_networks: Iterable[Network] = ()) -> None:
    """Refuse, before any connection, a webhook beyond this machine and the private network."""
    where = f" in {workflow.source}" if workflow.source else ""
    check_url(
        url,
        allowed=workflow.allow_remote_webhooks,
        what=f"the webhook of workflow '{workflow.name}'",
        how_to_allow=f"allow_remote_webhooks: true{where}",
        local_networks=local_networks,
    )


class Webhook(RouteAction):
    """POST `{"workflow", "run", "outputs"}` to the declared URL (redirects are not followed)."""

    name = "webhook"
    value = Annotated[str, AfterValidator(_http_url)]
    needs_file = False

    def perform(self, target: Any, ctx: StepContext) -> Done:
        check_webhook(target, ctx.workflow, ctx.act.local_networks)
        if not ctx.act.dry_run:
            ctx.act.post(target, {"workflow": ctx.workflow.name, "run": ctx.scope.get("run"), "outputs": _outputs(ctx)})
        return Done(target)


def _outputs(ctx: StepContext) -> dict[str, Any]:
    names = set(ctx.workflow.step_ids)
    return {k: v for k, v in ctx.scope.items() if k in names and _jsonable(v)}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
