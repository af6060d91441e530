"""The pages people read (GET), and /metrics and /healthz. Plain functions: Starlette runs them on its threads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from daemon.commands.listing import describe_trigger, next_fire
from daemon.domain import RunStatus
from daemon.errors import RunNotFound, UsageError
from daemon.store.evals import EvalStore
from daemon.store.search import RunFilter, search
from daemon.web import queries
from daemon.web.runview import step_views

PAGE_SIZE = 50


def overview(request: Request) -> Response:
    """Queued, running and failed now; per-workflow counts for 24 h and 7 d; servers; the last failures."""
    dashboard = request.app.state.dashboard
    source = dashboard.source
    engine = source.store.engine
    spans = queries.windows(datetime.now(UTC))
    per_window = queries.counts_in_windows(engine, spans)
    names = sorted(set(source.workflows()) | {name for counts in per_window.values() for name in counts})
    return dashboard.render(
        request, "overview.html", counts=source.store.counts(), failed_24h=queries.failed_since(engine, spans["24 h"]),
        per_window=per_window, names=names, statuses=[s for s in RunStatus], servers=source.servers(),
        failures=queries.last_failures(engine), refresh=True,
    )  # fmt: skip


@dataclass(frozen=True)
class ListQuery:
    """The runs page's parameters, read leniently: a value that does not parse is left out."""

    q: str
    where: RunFilter
    before: int | None
    offset: int

    @classmethod
    def of(cls, request: Request) -> ListQuery:
        params = request.query_params
        status = params.get("status", "")
        since, until = _day(params.get("since")), _day(params.get("until"))
        where = RunFilter(
            workflow=params.get("workflow") or None,
            status=RunStatus(status) if status in RunStatus.__members__.values() else None,
            since=since, until=until + timedelta(days=1) if until else None,
        )  # fmt: skip
        return cls(params.get("q", "").strip(), where, _int(params.get("before")), _int(params.get("offset")) or 0)

    def link(self, request: Request, **change: Any) -> str:
        """This page's URL with some parameters changed (None drops one)."""
        kept = {k: v for k, v in request.query_params.items() if k not in ("before", "offset")}
        kept |= {k: v for k, v in change.items() if v is not None}
        return "/runs?" + urlencode(kept)


def run_list(request: Request) -> Response:
    """Runs newest first (keyset pages), or search hits best first; filters by workflow, status and day."""
    dashboard = request.app.state.dashboard
    source = dashboard.source
    wanted = ListQuery.of(request)
    values: dict[str, Any] = {"wanted": wanted, "statuses": [s.value for s in RunStatus],
                              "names": sorted(source.workflows()), "params": request.query_params}  # fmt: skip
    if wanted.q:
        try:
            hits = search(source.store.engine, wanted.q, where=wanted.where, limit=PAGE_SIZE, offset=wanted.offset)
        except UsageError as exc:
            return dashboard.render(request, "runs.html", status=400, error=str(exc), hits=[], runs=None, **values)
        more = wanted.link(request, offset=wanted.offset + PAGE_SIZE) if len(hits) == PAGE_SIZE else None
        return dashboard.render(request, "runs.html", hits=hits, runs=None, next_link=more, **values)
    page = queries.page_of_runs(source.store.engine, wanted.where, before=wanted.before, size=PAGE_SIZE)
    more = wanted.link(request, before=page.next_before) if page.next_before else None
    corrected = source.corrections.corrected(r.id for r in page.runs)
    return dashboard.render(
        request, "runs.html", runs=page.runs, hits=None, corrected=corrected, next_link=more, **values
    )


def run_detail(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    """One run: input, each step's output and model calls, corrections and their forms, retry."""
    dashboard = request.app.state.dashboard
    source = dashboard.source
    run_id = request.path_params["run_id"]
    try:
        run = source.store.get(run_id)
    except RunNotFound as exc:
        return dashboard.render(request, "missing.html", status=404, message=str(exc))
    corrections = source.corrections.for_run(run_id)
    workflow = source.workflows().get(run.workflow)
    steps = step_views(run, source.store.calls(run_id), corrections, workflow)
    done = {"retried": "Queued again.", "corrected": "Correction recorded."}.get(request.query_params.get("done", ""))
    return dashboard.render(
        request, "run.html", status=status, run=run, steps=steps, corrections=corrections, error=error, done=done,
        split=run.outputs.get("_split"), workflow_loaded=workflow is not None,
    )  # fmt: skip


def workflow_list(request: Request) -> Response:
    """Each workflow: its trigger, next fire time and last outcome; the errors of broken files."""
    dashboard = request.app.state.dashboard
    source = dashboard.source
    now = datetime.now(UTC)
    rows = [
        {"workflow": w, "trigger": describe_trigger(w), "next": next_fire(w, now),
         "last": queries.last_outcome(source.store.engine, w.name)}
        for w in sorted(source.workflows().values(), key=lambda w: w.name)
    ]  # fmt: skip
    return dashboard.render(request, "workflows.html", rows=rows, errors=source.workflow_errors())


def eval_list(request: Request) -> Response:
    """Stored evals (`gristmill eval`), newest first."""
    dashboard = request.app.state.dashboard
    return dashboard.render(request, "evals.html", evals=EvalStore(dashboard.source.store.engine).recent(limit=200))


def eval_detail(request: Request) -> Response:
    """One eval: per step the agreement, invalid answers, disagreements (linked), labels or fields, speed."""
    dashboard = request.app.state.dashboard
    eval_id = request.path_params["eval_id"]
    try:
        record = EvalStore(dashboard.source.store.engine).get(eval_id)
    except UsageError as exc:
        return dashboard.render(request, "missing.html", status=404, message=str(exc))
    return dashboard.render(request, "eval.html", record=record, steps=record.figures.get("steps", {}))


def metrics(request: Request) -> Response:
    """Prometheus' text format."""
    body, content_type = request.app.state.dashboard.metrics.exposition()
    return Response(body, media_type=content_type)


def healthz(request: Request) -> Response:
    """200 when every component answers, else 503 naming those that do not."""
    problems = request.app.state.dashboard.source.health().problems()
    if problems:
        return JSONResponse({"status": "unhealthy", "failing": problems}, status_code=503)
    return JSONResponse({"status": "ok"})


def _day(text: str | None) -> datetime | None:
    """A YYYY-MM-DD date as the start of that day in this machine's zone."""
    try:
        day = date.fromisoformat(text or "")
    except ValueError:
        return None
    return datetime.combine(day, time()).astimezone()


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and len(text) < 19 else None
