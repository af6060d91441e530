"""`gristmill check`: settings, workflows, where model traffic goes, the server and its models."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from daemon.actions.webhook import check_webhook
from daemon.commands.check_folders import folder_findings
from daemon.errors import ModelError, StoreError
from daemon.llm.ollama_backend import OllamaBackend
from daemon.netguard import Network, RemoteRefused, is_local
from daemon.plugins import PluginError, registry
from daemon.settings import Settings
from daemon.store.db import make_engine, probe, sqlite_file
from daemon.store.migrate import current, head
from daemon.triggers import Level
from daemon.words import count
from daemon.workflow import Workflow, load_workflows

OK, FAILED, INVALID = 0, 1, 2


def run_check(settings: Settings, echo: Callable[[str], None]) -> int:
    """Print what is right and wrong, one line each; return the exit code."""
    code = OK
    echo(f"settings: database {settings.db_url}; workflows in {settings.workflows}")
    try:
        plugins = registry().plugins
    except PluginError as exc:
        echo(f"error: {exc}")
        return INVALID
    if plugins:
        echo(f"plugins: {', '.join(plugins)}")
    if not settings.workflows.is_dir():
        echo(f"error: the workflows folder {settings.workflows} does not exist; create it or set GRISTMILL_WORKFLOWS")
        code = INVALID
    workflows, errors = load_workflows(settings.workflows)
    for name in sorted(workflows):
        echo(f"workflow {name}: ok")
    for error in errors:
        echo(f"error: {error}")
        code = INVALID
    nets = settings.local_networks
    code = max(code, _folders(workflows.values(), echo), _webhooks(workflows.values(), echo, nets))
    code = max(code, _triggers(workflows.values(), echo))
    code = max(code, _data_at_rest(settings, echo), _database(settings, echo))
    url = settings.ollama_url
    if nets:
        echo(f"declared local (GRISTMILL_LOCAL_NETWORKS): {', '.join(map(str, nets))}")
    if is_local(url, nets):
        echo(f"model traffic goes to {url}, on this machine or the local network")
    elif settings.allow_remote_model:
        echo(f"warning: model traffic goes to {url}, a remote server (GRISTMILL_ALLOW_REMOTE_MODEL=true)")
    else:
        echo(
            f"error: the model server {url} is not on this machine or a private network; documents "
            "would leave home; use a local server, declare its network local in GRISTMILL_LOCAL_NETWORKS, "
            "or set GRISTMILL_ALLOW_REMOTE_MODEL=true"
        )
        return INVALID
    backend = OllamaBackend(url, timeout=settings.connect_timeout * 2, connect_timeout=settings.connect_timeout)
    try:
        available = backend.list_models()
    except ModelError as exc:
        echo(f"error: {exc}; start it with 'ollama serve' or point GRISTMILL_OLLAMA_URL at it")
        return max(code, FAILED)
    echo(f"model server {url}: reachable, {count(len(available), 'model')}")
    users: dict[str, list[str]] = {}
    for workflow in workflows.values():
        for model in dict.fromkeys(m for m in (workflow.model or settings.model, workflow.vision_model) if m):
            users.setdefault(model, []).append(workflow.name)
        for shadow in workflow.shadow:  # a candidate the server lacks is left out of shadow mode
            users.setdefault(shadow.model, []).append(f"{workflow.name} (shadow)")
    for model, names in sorted(users.items()):
        if backend.has_model(model):
            echo(f"model {model}: present")
        else:
            echo(f"error: model {model} is missing (used by {', '.join(sorted(names))}); run: ollama pull {model}")
            code = max(code, FAILED)
    return code


def _folders(workflows: Iterable[Workflow], echo: Callable[[str], None]) -> int:
    """Destinations blocked by a file (invalid), folders two workflows take files from (a warning)."""
    code = OK
    for finding in folder_findings(workflows):
        echo(_PREFIX[finding.level] + finding.message)
        code = max(code, _CODES[finding.level])
    return code


def _webhooks(workflows: Iterable[Workflow], echo: Callable[[str], None], nets: Iterable[Network] = ()) -> int:
    """Say where each webhook sends run data; a remote one not allowed by its workflow is an error."""
    code = OK
    for workflow in sorted(workflows, key=lambda w: w.name):
        for url in sorted(webhook_urls(workflow)):
            if is_local(url, nets):
                echo(f"workflow {workflow.name}: webhook traffic goes to {url}, on this machine or the local network")
            elif workflow.allow_remote_webhooks:
                echo(f"warning: workflow {workflow.name}: webhook traffic goes to {url}, a remote server "
                     "(allow_remote_webhooks: true)")  # fmt: skip
            else:
                try:
                    check_webhook(url, workflow)
                except RemoteRefused as exc:
                    echo(f"error: {exc}")
                code = INVALID
    return code


_CODES = {Level.OK: OK, Level.WARNING: OK, Level.FAILED: FAILED, Level.INVALID: INVALID}
_PREFIX = {Level.OK: "", Level.WARNING: "warning: ", Level.FAILED: "error: ", Level.INVALID: "error: "}


def _triggers(workflows: Iterable[Workflow], echo: Callable[[str], None]) -> int:
    """What each trigger kind finds of its workflows: secrets set, mailboxes reachable, hook paths distinct."""
    code = OK
    for name, kind in registry().triggers.items():
        mine = [w for w in workflows if w.trigger.kind.name == name]
        for finding in kind.diagnose(mine) if mine else []:
            echo(_PREFIX[finding.level] + finding.message)
            code = max(code, _CODES[finding.level])
    return code


def webhook_urls(workflow: Workflow) -> set[str]:
    """Every webhook address a workflow's routes declare."""
    return {action.target for _, action in workflow.actions() if action.name == "webhook"}


def _data_at_rest(settings: Settings, echo: Callable[[str], None]) -> int:
    """Warn when the database or its folder can be read by other users of this machine."""
    for path in (settings.data_dir, settings.data_dir / "gristmill.db"):
        if path.exists() and path.stat().st_mode & 0o077:
            echo(f"warning: {path} can be read by other users of this machine; run: chmod go-rwx {path}")
    return OK


def _database(settings: Settings, echo: Callable[[str], None]) -> int:
    """The run database can be opened, read and written, and is not corrupt (it is not created here)."""
    file = sqlite_file(settings.db_url)
    if file is not None and not file.exists():
        echo(f"database {file}: none yet; gristmill run creates it")
        return OK
    try:
        engine = make_engine(settings.db_url)
    except StoreError as exc:
        echo(f"error: {exc}")
        return FAILED
    try:
        probe(engine)
        at, newest = current(engine), head()
    except StoreError as exc:
        echo(f"error: {exc}")
        return FAILED
    finally:
        engine.dispose()
    if at != newest:
        echo(f"database: at revision {at or 'none'}, the newest is {newest}; gristmill run (or db upgrade) upgrades it")
    else:
        echo("database: ok")
    return OK
