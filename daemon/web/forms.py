"""What the dashboard's forms do (POST): retry a run, record a correction, sign in.

Every form goes through `checked_form` (the session's CSRF token); the guard has already checked
the origin. Work on the database runs on Starlette's threads, never on the event loop.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from daemon.commands.correct import build_change, os_user
from daemon.errors import GristmillError
from daemon.web import pages
from daemon.web.runview import changed_fields, step_views
from daemon.web.security import checked_form, login_cookie


async def retry(request: Request) -> Response:
    """Queue a failed or skipped run again, and wake the workers (a succeeded one is refused)."""
    await checked_form(request)
    run_id = request.path_params["run_id"]
    source = request.app.state.dashboard.source
    try:
        queued = await run_in_threadpool(source.store.retry, [run_id])
    except GristmillError as exc:
        return await run_in_threadpool(pages.run_detail, request, error=str(exc), status=400)
    if not queued:
        return await run_in_threadpool(
            pages.run_detail, request, error="only a failed or skipped run can be queued again", status=409
        )
    source.wake()
    return RedirectResponse(f"/runs/{run_id}?done=retried", 303)


async def correct(request: Request) -> Response:
    """Record a correction of one step: a label, changed fields, or a text."""
    form = await checked_form(request)
    run_id = request.path_params["run_id"]
    try:
        await run_in_threadpool(_record, request, run_id, {k: v for k, v in form.items() if isinstance(v, str)})
    except GristmillError as exc:
        return await run_in_threadpool(pages.run_detail, request, error=str(exc), status=400)
    return RedirectResponse(f"/runs/{run_id}?done=corrected#step-{form.get('step', '')}", 303)


def _record(request: Request, run_id: int, form: dict[str, str]) -> None:
    source = request.app.state.dashboard.source
    run = source.store.get(run_id)
    workflow = source.workflows().get(run.workflow)
    step_id = form.get("step", "")
    label = form.get("label") if "label" in form else None
    text = form.get("text") if "text" in form else None
    sets: list[str] = []
    if not label and text is None:
        views = step_views(run, [], source.corrections.for_run(run_id), workflow)
        view = next((v for v in views if v.step_id == step_id), None)
        submitted = {k.removeprefix("field:"): v for k, v in form.items() if k.startswith("field:")}
        sets = changed_fields(view, submitted) if view is not None else []
        if not sets:
            raise GristmillError("no field was changed; edit a value before saving")
    change = build_change(workflow, step_id, label=label or None, sets=sets, text=text)
    source.corrections.add(run_id, step_id, change, author=f"{os_user()} (dashboard)")


async def login_page(request: Request) -> Response:
    """The sign-in form (only asked for when GRISTMILL_HTTP_TOKEN is set)."""
    return request.app.state.dashboard.render(request, "login.html", next=_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    """Check the token; on success set the HttpOnly, SameSite=Strict cookie and go where the person was going."""
    form = await checked_form(request)
    guard = request.state.guard
    given = form.get("token")
    target = _next(form.get("next") if isinstance(form.get("next"), str) else None)
    if guard.token is None or not isinstance(given, str) or not guard.token_ok(given):
        wrong = "That is not the token this dashboard was started with."
        return request.app.state.dashboard.render(request, "login.html", status=401, next=target, error=wrong)
    response = RedirectResponse(target, 303)
    response.headers.append("set-cookie", login_cookie(guard))
    return response


def _next(target: str | None) -> str:
    """Only a path of this site: never `//elsewhere` or `https://elsewhere`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
