"""`gristmill check`: settings, workflows, where model traffic goes, each server and the models workflows need."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from daemon.actions.webhook import check_webhook
from daemon.commands.check_folders import folder_findings
from daemon.commands.survey import ServerStatus, loaded_line, survey
from daemon.errors import StoreError
from daemon.llm.base import listed
from daemon.llm.modelref import parse_model
from daemon.netguard import Network, RemoteRefused, is_local
from daemon.plugins import PluginError, registry
from daemon.settings import Settings
from daemon.store.db import make_engine, probe, shown_url, sqlite_file
from daemon.store.migrate import current, head
from daemon.triggers import Level
from daemon.words import count
from daemon.workflow import Workflow, load_workflows

OK, FAILED, INVALID = 0, 1, 2


def run_check(settings: Settings, echo: Callable[[str], None]) -> int:
    """Print what is right and wrong, one line each; return the exit code."""
    code = OK
    echo(f"settings: database {shown_url(settings.db_url)}; workflows in {settings.workflows}")
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
    servers = settings.model_servers
    workflows, errors = load_workflows(settings.workflows, servers=servers)
    for name in sorted(workflows):
        echo(f"workflow {name}: ok")
    for error in errors:
        echo(f"error: {error}")
        code = INVALID
    nets = settings.local_networks
    code = max(code, _folders(workflows.values(), echo), _webhooks(workflows.values(), echo, nets))
    code = max(code, _triggers(workflows.values(), echo))
    code = max(code, _data_at_rest(settings, echo), _database(settings, echo))
    if nets:
        echo(f"declared local (GRISTMILL_LOCAL_NETWORKS): {', '.join(map(str, nets))}")
    statuses = [survey(config, settings, detailed=False) for config in servers.values()]
    for status in statuses:
        code = max(code, _server(status, settings, echo))
    if any(s.refused for s in statuses):
        return code
    return max(code, _models(workflows.values(), settings, statuses, echo))


def _server(status: ServerStatus, settings: Settings, echo: Callable[[str], None]) -> int:
    """One server: where its traffic goes, whether it answers as its kind, what it has loaded."""
    config, name = status.config, status.config.name
    if status.refused or status.invalid or status.kind is None:
        echo(f"error: {status.error}")
        return INVALID
    if is_local(config.url, settings.local_networks):
        echo(f"server {name}: model traffic goes to {config.url}, on this machine or the local network")
    else:
        echo(f"warning: server {name}: model traffic goes to {config.url}, a remote server "
             "(GRISTMILL_ALLOW_REMOTE_MODEL=true)")  # fmt: skip
    if not status.up:
        hint = "" if status.impostor else f"; {status.kind.start_hint} or point {config.url_setting} at it"
        echo(f"error: {status.error}{hint}")
        return FAILED
    version = f", version {status.version}" if status.version else ""
    slots, models = count(config.slots, "slot"), count(len(status.models), "model")
    echo(f"server {name} ({config.kind}, {slots}): up{version}, {models}")
    for model in status.loaded:
        echo(f"server {name}: loaded now: {loaded_line(model)}")
    return OK


def _models(
    workflows: Iterable[Workflow], settings: Settings, statuses: list[ServerStatus], echo: Callable[[str], None]
) -> int:
    """Each model a workflow uses: on which servers it is, or missing with the way to get it."""
    code = OK
    users: dict[str, list[str]] = {}
    for workflow in workflows:
        for model in dict.fromkeys(m for m in (workflow.model or settings.model, workflow.vision_model) if m):
            users.setdefault(model, []).append(workflow.name)
        for shadow in workflow.shadow:  # a candidate the servers lack is left out of shadow mode
            users.setdefault(shadow.model, []).append(f"{workflow.name} (shadow)")
    for text, names in sorted(users.items()):
        ref = parse_model(text)
        pool = [s for s in statuses if ref.server in (None, s.config.name)]
        having = [s.config.name for s in pool if s.up and listed(ref.name, s.names)]
        if having:
            echo(f"model {ref.name}: present on {', '.join(having)}")
        elif any(not s.up for s in pool):
            echo(f"warning: model {text}: not on any server that answers (used by {', '.join(sorted(names))})")
        else:
            pin = f" --server {ref.server}" if ref.server else ""
            echo(f"error: model {ref.name} is missing (used by {', '.join(sorted(names))}); "
                 f"run: gristmill pull {ref.name}{pin}")  # fmt: skip
            code = FAILED
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
