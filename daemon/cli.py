"""The `gristmill` command: a thin layer over the app, the store and the views."""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from daemon import early_signals
from daemon.domain import RunStatus
from daemon.errors import GristmillError, UsageError
from daemon.logs import setup_logging
from daemon.settings import Settings, load_settings

# soft_wrap: piped output keeps long lines whole instead of breaking them at 80 columns.
console = Console(soft_wrap=True)
errors = Console(stderr=True)  # progress bars: stdout stays the command's output


class _Group(click.Group):
    """Turns every GristmillError into one sentence on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GristmillError as exc:
            click.echo(f"gristmill: {exc}", err=True)
            sys.exit(exc.exit_code)


def _settings(**overrides: Any) -> Settings:
    settings = load_settings(**overrides)
    setup_logging(settings.log_format, journal_stream=settings.journal_stream)
    return settings


def _app(settings: Settings | None = None):
    from daemon.app import App  # the heavy imports wait until a command needs them

    return App(settings or _settings())


def _store(settings: Settings):
    from daemon.store import RunStore
    from daemon.store.db import make_engine
    from daemon.store.migrate import upgrade

    engine = make_engine(settings.db_url)
    upgrade(engine)
    return RunStore(engine)


def collect_from_here() -> None:
    """The cyclic collector on again, blind to what start-up made (it lives as long as the process).

    Only when it is off, as `python -m daemon` and `gristmill` start (`daemon/__main__.py`); a
    command called in a process of its own choosing (a test's) leaves that process's collector alone.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _print_json(value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    # A file name that is not UTF-8 holds lone surrogates; as \udcXX escapes it is valid JSON and exact.
    click.echo(text.encode("utf-8", "backslashreplace").decode("utf-8"))


@click.group(cls=_Group)
@click.version_option(package_name="gristmill")
@click.pass_context
def main(ctx: click.Context) -> None:
    """gristmill: watched folders and schedules, a local model, every call recorded."""
    if ctx.invoked_subcommand != "run":
        early_signals.release()  # only the daemon stops gracefully; the others stop at once as usual
        collect_from_here()  # `run` keeps the collector off until the daemon is built


@main.command()
@click.option("--once", is_flag=True, help="Process the backlog and due ticks, then exit.")
@click.option(
    "--role", type=click.Choice(["all", "intake", "worker"]), default=None,
    help="all (default), intake (triggers only: folders, schedules, mailboxes, hooks) or worker (runs only).",
)  # fmt: skip
def run(once: bool, role: str | None) -> None:
    """Run the daemon in the foreground."""
    from daemon.lifecycle import Lifecycle

    life = Lifecycle()
    if once:
        early_signals.release()
    else:
        life.install()  # before start-up (and taking signals noted earlier), so an early SIGTERM stops cleanly
    app = _app(_settings(**({"role": role} if role else {})))
    collect_from_here()  # built: the app's modules, settings, workflows and model clients
    if once:
        from daemon.commands.once import run_once

        code = run_once(app, click.echo)
        app.close()
        sys.exit(code)
    app.serve(life)
    app.close()
    if life.aborted:
        # A second signal: running runs were returned to the queue; do not wait for their threads.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)


@main.command()
def check() -> None:
    """Validate settings and workflows, reach the model server, list missing models."""
    from daemon.commands.check import run_check

    settings = load_settings()
    sys.exit(run_check(settings, click.echo))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, one object per server.")
def models(as_json: bool) -> None:
    """Each model server, up or down, its version and its models (size, quantisation, context, loaded)."""
    from daemon.commands.models import models_json, print_models, server_statuses

    statuses = server_statuses(load_settings())
    if as_json:
        _print_json(models_json(statuses))
    else:
        print_models(console, statuses, click.echo)


@main.command()
@click.argument("model")
@click.option("--server", "-s", help="The server to pull onto (default: the only one that can pull).")
def pull(model: str, server: str | None) -> None:
    """Download MODEL onto an Ollama server, with progress; hf.co/USER/REPO:QUANT names work too."""
    from daemon.commands.pull import pull as pull_model

    name = pull_model(load_settings(), model, server, Console(stderr=True))
    click.echo(f"{model} is on server {name}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def workflows(as_json: bool) -> None:
    """List each workflow, its trigger and next fire time."""
    from daemon.commands.listing import workflow_rows
    from daemon.views import print_table

    settings = load_settings()
    rows, errors = workflow_rows(settings)
    if as_json:
        _print_json(rows)
    else:
        print_table(console, ("name", "trigger", "next"), [[r["name"], r["trigger"], r["next"] or "—"] for r in rows])
    for error in errors:
        click.echo(f"gristmill: {error}", err=True)
    sys.exit(2 if errors else 0)


@main.command()
@click.argument("name")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Ask the model but move and write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
def trigger(name: str, file: Path | None, dry_run: bool, as_json: bool) -> None:
    """Run a workflow now (on FILE for a watch workflow) and print the run."""
    from daemon.commands.usage import trigger_input
    from daemon.views import print_run, run_json

    app = _app()
    if name in app.workflows:
        trigger_input(app.workflows[name], file)
    run = app.trigger(name, file, dry_run=dry_run)
    if as_json:
        _print_json(run_json(run))
    else:
        print_run(console, run, app.store.calls(run.id))
    app.close()
    sys.exit(0 if run.status is not RunStatus.FAILED and run.status is not RunStatus.QUEUED else 1)


@main.command()
@click.option("--workflow", "-w", help="Only this workflow.")
@click.option("--status", "-s", type=click.Choice([s.value for s in RunStatus]), help="Only this status.")
@click.option("--limit", "-n", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def runs(workflow: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """Run history, newest first."""
    from daemon.store.corrections import CorrectionStore
    from daemon.views import RUN_COLUMNS, print_table, run_json, run_rows

    store = _store(load_settings())
    found = store.history(workflow=workflow, status=RunStatus(status) if status else None, limit=limit)
    if as_json:
        corrected = CorrectionStore(store.engine).corrected(r.id for r in found)
        _print_json([run_json(r, corrected=r.id in corrected) for r in found])
    else:
        print_table(console, RUN_COLUMNS, run_rows(found))


@main.command()
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(run_id: int, as_json: bool) -> None:
    """One run: each step's model, prompt, answer, tokens, durations and output."""
    from daemon.store.corrections import CorrectionStore
    from daemon.views import call_json, correction_json, print_run, run_json

    store = _store(load_settings())
    run, calls = store.get(run_id), store.calls(run_id)
    corrections = CorrectionStore(store.engine).for_run(run_id)
    if as_json:
        _print_json({
            **run_json(run, corrected=bool(corrections)), "calls": [call_json(c) for c in calls],
            "corrections": [correction_json(c) for c in corrections],
        })  # fmt: skip
    else:
        print_run(console, run, calls)
        for c in corrections:
            when = c.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
            change = json.dumps(c.change, ensure_ascii=False)
            line = f"corrected step {c.step_id} ({c.kind.value}) by {c.author} at {when}: {change}"
            console.print(line, markup=False)


@main.command()
@click.argument("run_ids", metavar="RUN…", nargs=-1, type=int)
@click.option("--failed", is_flag=True, help="Queue every failed run again.")
@click.option("--workflow", "-w", help="With --failed: only this workflow.")
def retry(run_ids: tuple[int, ...], failed: bool, workflow: str | None) -> None:
    """Queue runs again; the daemon (or `run --once`) picks them up."""
    from daemon.commands.usage import known_workflow
    from daemon.workflow import load_workflows

    if bool(run_ids) == failed:
        raise UsageError("give run ids or --failed, not both and not neither")
    from daemon.engine.doorbell import ring

    settings = load_settings()
    store = _store(settings)
    if workflow is not None:
        known_workflow(workflow, load_workflows(settings.workflows)[0], store)
    queued = store.retry_failed(workflow=workflow) if failed else store.retry(run_ids)
    if queued:
        ring(settings.data_dir)  # a daemon running here takes them now, not at its next look
    click.echo(f"queued again: {', '.join(map(str, queued)) or 'none'}")


@main.command()
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--step", "step_id", required=True, help="The id of the step whose output was wrong.")
@click.option("--label", help="The right label (classify steps).")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="A right field value (extract); repeatable.")
@click.option("--text", help="The right text (summarise and prompt steps).")
@click.option("--refile", is_flag=True, help="Apply the corrected label's route to the file where it is now.")
@click.option("--json", "as_json", is_flag=True, help="Print the recorded correction as JSON.")
def correct(
    run_id: int, step_id: str, label: str | None, sets: tuple[str, ...], text: str | None, refile: bool, as_json: bool
) -> None:
    """Record the right output of a step of a run; the run's own record stays as it was."""
    from daemon.commands.correct import correct_run, refile_lines, refile_run
    from daemon.views import correction_json

    settings = load_settings()
    store = _store(settings)
    if refile:
        recorded, did = refile_run(settings, store, run_id, step_id, label=label, sets=sets, text=text)
    else:
        recorded, did = correct_run(settings, store, run_id, step_id, label=label, sets=sets, text=text), None
    if as_json:
        _print_json(correction_json(recorded))
        return
    click.echo(f"run {run_id} step {step_id} corrected: {json.dumps(recorded.output, ensure_ascii=False)}")
    for line in refile_lines(did, recorded) if did is not None else ():
        click.echo(line)


@main.command("eval")
@click.argument("workflow", required=False)
@click.option("--model", "-m", help="The candidate model (with --shadow: whose shadow answers).")
@click.option("--shadow", is_flag=True, help="Compare the answers shadow mode recorded; ask nothing.")
@click.option("--since", help="Only runs that finished this recently, e.g. 30d.")
@click.option("--limit", "-n", type=click.IntRange(1, 1_000_000), help="Only the newest N runs.")
@click.option("--list", "listing", is_flag=True, help="List the stored evals (of WORKFLOW, when given).")
@click.option("--show", "show_id", type=int, metavar="ID", help="Print a stored eval again.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate(
    workflow: str | None, model: str | None, shadow: bool, since: str | None, limit: int | None, listing: bool,
    show_id: int | None, as_json: bool,
) -> None:  # fmt: skip
    """Compare a candidate model with WORKFLOW's recorded runs (or list and show stored evals)."""
    from daemon.commands.evaluate import eval_json, print_eval, print_eval_list, run_eval, selection
    from daemon.store.evals import EvalStore

    if listing + (show_id is not None) + (workflow is not None and not listing) != 1:
        raise UsageError("give WORKFLOW --model CANDIDATE (or --shadow), or --list [WORKFLOW], or --show ID")
    settings = _settings()
    store = _store(settings)
    if listing:
        found = EvalStore(store.engine).recent(workflow=workflow, limit=limit or 50)
        if as_json:
            _print_json([eval_json(r) for r in found])
        else:
            print_eval_list(console, found)
        return
    if show_id is not None:
        record = EvalStore(store.engine).get(show_id)
    else:
        chosen = selection(since, limit)
        record = run_eval(settings, store, workflow or "", model=model, shadow=shadow, chosen=chosen, progress=errors)
    if as_json:
        _print_json(eval_json(record))
    else:
        print_eval(console, record)


@main.command("export")
@click.argument("workflow")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="The folder to write into.")
@click.option("--step", "step_id", help="Only this step's answers (default: every step that asks the model).")
@click.option("--only", type=click.Choice(["all", "corrected"]), default="all", show_default=True,
              help="corrected: only answers a person corrected.")  # fmt: skip
@click.option("--valid", type=float, default=0.1, show_default=True, help="Share of the runs for valid.jsonl.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def export_cmd(workflow: str, out: Path, step_id: str | None, only: str, valid: float, as_json: bool) -> None:
    """Write train.jsonl and valid.jsonl (chat format) and a README.md from WORKFLOW's recorded runs."""
    from daemon.commands.export import command_line, export, export_json, summary
    from daemon.export.dataset import Only

    settings = _settings()
    data = export(
        settings, _store(settings), workflow, out, step_id=step_id, only=Only(only), valid=valid, progress=errors,
        command=command_line(sys.argv[1:]),
    )  # fmt: skip
    if as_json:
        _print_json(export_json(data, out))
    else:
        click.echo(summary(data, out))


@main.command()
@click.argument("query")
@click.option("--workflow", "-w", help="Only this workflow.")
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def search(query: str, workflow: str | None, limit: int, as_json: bool) -> None:
    """Full-text search: words, prefixes (inv*) and "phrases"; best hits first."""
    from daemon.commands.search import hit_json, hits_table
    from daemon.store.search import RunFilter
    from daemon.store.search import search as find

    store = _store(load_settings())
    hits = find(store.engine, query, where=RunFilter(workflow=workflow), limit=limit)
    if as_json:
        _print_json([hit_json(h) for h in hits])
    elif hits:
        console.print(hits_table(hits))
    else:
        click.echo(f"no run matches {query}", err=True)


@main.command()
def web() -> None:
    """Serve the dashboard, /metrics and /healthz over the database alone (no runs are worked on)."""
    from daemon.commands.web import serve_web

    serve_web(_settings())


@main.command()
@click.option("--dry-run", is_flag=True, help="Only say what would be pruned.")
def prune(dry_run: bool) -> None:
    """Forget runs older than their workflow's `retention` (model calls, outputs); files are untouched."""
    from datetime import UTC, datetime

    from daemon.retention import prune as prune_runs
    from daemon.workflow import load_workflows

    settings = load_settings()
    loaded, errors = load_workflows(settings.workflows)
    for error in errors:
        click.echo(f"gristmill: {error} (its runs are not pruned)", err=True)
    report = prune_runs(_store(settings), loaded.values(), datetime.now(UTC), dry_run=dry_run)
    for line in report.lines():
        click.echo(line)


@main.command()
@click.option("--since", help="Only calls made this recently, e.g. 30d or 24h.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def costs(since: str | None, as_json: bool) -> None:
    """Tokens, calls and model time per workflow and model, and what paid APIs would have charged."""
    from daemon.commands.costs import costs_report, print_costs

    settings = load_settings()
    result = costs_report(settings, _store(settings).engine, since)
    if as_json:
        _print_json(result)
    else:
        print_costs(console, result)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--all", "everything", is_flag=True, help="Also the nodes that stopped more than a day ago.")
def nodes(as_json: bool, everything: bool) -> None:
    """The nodes working on this database: host, pid, role, state, heartbeat, runs in hand."""
    from daemon.commands.nodes import NODE_COLUMNS, node_rows, node_table_rows
    from daemon.views import print_table

    rows = node_rows(load_settings(), everything=everything)
    if as_json:
        _print_json([row.json() for row in rows])
    else:
        print_table(console, NODE_COLUMNS, node_table_rows(rows))


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations up to the newest schema."""
    from daemon.store.db import make_engine, shown_url
    from daemon.store.migrate import current, upgrade

    settings = load_settings()
    engine = make_engine(settings.db_url)
    upgrade(engine)
    click.echo(f"database at revision {current(engine)}: {shown_url(settings.db_url)}")


@db.command("copy")
@click.option("--to", "to_url", required=True, metavar="URL", help="SQLAlchemy URL of the database to copy into.")
def db_copy(to_url: str) -> None:
    """Copy the whole history into another database (e.g. SQLite to PostgreSQL); again copies nothing twice."""
    from daemon.commands.dbcopy import copy_database

    settings = load_settings()
    tables = copy_database(settings.db_url, to_url, Console(stderr=True))
    for copy in tables:
        click.echo(f"{copy.table}: {copy.rows} rows, {copy.copied} copied, {copy.already_there} already there")
