"""`gristmill check`: settings, workflows, where model traffic goes, the server and its models."""

from __future__ import annotations

from collections.abc import Callable

from daemon.errors import ModelError
from daemon.llm.ollama_backend import OllamaBackend
from daemon.netguard import is_local
from daemon.settings import Settings
from daemon.workflow import load_workflows

OK, FAILED, INVALID = 0, 1, 2


def run_check(settings: Settings, echo: Callable[[str], None]) -> int:
    """Print what is right and wrong, one line each; return the exit code."""
    code = OK
    echo(f"settings: database {settings.db_url}; workflows in {settings.workflows}")
    if not settings.workflows.is_dir():
        echo(f"error: the workflows folder {settings.workflows} does not exist; create it or set GRISTMILL_WORKFLOWS")
        code = INVALID
    workflows, errors = load_workflows(settings.workflows)
    for name in sorted(workflows):
        echo(f"workflow {name}: ok")
    for error in errors:
        echo(f"error: {error}")
        code = INVALID
    url = settings.ollama_url
    if is_local(url):
        echo(f"model traffic goes to {url}, on this machine or the local network")
    elif settings.allow_remote_model:
        echo(f"warning: model traffic goes to {url}, a remote server (GRISTMILL_ALLOW_REMOTE_MODEL=true)")
    else:
        echo(
            f"error: the model server {url} is not on this machine or a private network; documents "
            "would leave home; use a local server or set GRISTMILL_ALLOW_REMOTE_MODEL=true"
        )
        return INVALID
    backend = OllamaBackend(url, timeout=settings.connect_timeout * 2, connect_timeout=settings.connect_timeout)
    try:
        available = backend.list_models()
    except ModelError as exc:
        echo(f"error: {exc}; start it with 'ollama serve' or point GRISTMILL_OLLAMA_URL at it")
        return max(code, FAILED)
    echo(f"model server {url}: reachable, {len(available)} models")
    users: dict[str, list[str]] = {}
    for workflow in workflows.values():
        users.setdefault(workflow.model or settings.model, []).append(workflow.name)
    for model, names in sorted(users.items()):
        if backend.has_model(model):
            echo(f"model {model}: present")
        else:
            echo(f"error: model {model} is missing (used by {', '.join(sorted(names))}); run: ollama pull {model}")
            code = max(code, FAILED)
    return code
