"""The typed shape of an HTTP hook trigger (`trigger: {http: {path: /hooks/NAME, token_env: VAR}}`)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from daemon.workflow.fields import EnvName, StrictModel, problem

CONTEXT_KEY = "hook"  # the run context's key: what the request's body was
PREFIX = "/hooks/"
_PATH = re.compile(r"^/hooks/[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


def _hook_path(value: str) -> str:
    if len(value) > 200 or not _PATH.match(value):
        raise problem("hook_path", "'{path}' is not a hook path; use /hooks/ and a name of letters, digits, dots, "
                      "dashes and underscores, such as /hooks/form-triage", path=value[:80])  # fmt: skip
    return value


HookPath = Annotated[str, AfterValidator(_hook_path)]


class HttpTrigger(StrictModel):
    """A POST to `path` with `Authorization: Bearer <the value of token_env>` queues a run on its body."""

    path: HookPath
    token_env: EnvName
