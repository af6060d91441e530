"""The hook endpoints as Starlette routes: one route per http workflow, mounted by the dashboard's server.

`POST /hooks/NAME` with `Authorization: Bearer <token>`: the token is checked (in constant time)
before the body is read, the body is capped at `GRISTMILL_MAX_FILE_BYTES` while it streams in, then
stored and queued; only then comes the answer, `202 {"run": ID}`. With `?wait=SECONDS` the answer
waits for the run: `200` with its outputs when it ends in time, else the same `202`. Hook routes use
no session, cookie or CSRF token: the Bearer token of the hook is the whole of their authentication.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from daemon import defaults
from daemon.domain import Run
from daemon.inbound.hook import HookRefusal, parse_body, precheck
from daemon.inbound.source import HookSource
from daemon.settings import read_secret

# Every method is routed to the hook, so that the refusal of a GET is ours (405, in JSON, with Allow).
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
POLL_FIRST, POLL_MAX = 0.02, 0.25  # seconds between looks at a run while a request waits for it
HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


def hook_routes(source: HookSource) -> list[Route]:
    """One route per loaded http workflow, at its `path`."""
    return [Route(path, _endpoint(source, name), methods=METHODS) for path, name in sorted(source.paths().items())]


def hook_router(source: HookSource) -> Router:
    """The routes of every hook, as one ASGI app; `HookSource.configure` replaces its routes on a reload."""
    return Router(routes=hook_routes(source), default=_not_found)


def _endpoint(source: HookSource, name: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def receive(request: Request) -> JSONResponse:
        return await handle(source, name, request)

    return receive


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await _refused(HookRefusal(404, f"no hook is served at {scope['path']}"))(scope, receive, send)


async def handle(source: HookSource, name: str, request: Request) -> JSONResponse:
    """One hook request, from token to answer."""
    workflow = source.services.workflows().get(name)
    if workflow is None:  # removed by a reload a moment ago
        return _refused(HookRefusal(404, f"no hook is served at {request.url.path}"))
    headers = dict(request.headers)
    token = read_secret(workflow.trigger.spec.token_env)
    refusal, wait = _wait_of(request)
    refusal = precheck(request.method, headers, token, source.limits) or refusal
    if refusal is not None:
        return _refused(refusal)
    data = await _body(request, source.limits.max_bytes)
    parsed = parse_body(headers, data, source.limits) if data is not None else _too_large(source.limits.max_bytes)
    if isinstance(parsed, HookRefusal):
        return _refused(parsed)
    run = await run_in_threadpool(source.accept, workflow, parsed)
    if wait > 0:
        run = await _await_run(source, run, wait)
        if run.status.finished:
            return JSONResponse(_finished(run), status_code=200, headers=HEADERS)
    return JSONResponse({"run": run.id}, status_code=202, headers=HEADERS)


def _too_large(limit: int) -> HookRefusal:
    return HookRefusal(413, f"the body is over the limit of {limit} bytes (GRISTMILL_MAX_FILE_BYTES)")


def _wait_of(request: Request) -> tuple[HookRefusal | None, float]:
    raw = request.query_params.get("wait")
    if raw is None:
        return None, 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        return HookRefusal(400, f"wait={raw[:20]} is not a number of seconds"), 0.0
    return None, min(seconds, defaults.HOOK_WAIT_MAX_SECONDS)


async def _body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past `limit` (a missing or false Content-Length too)."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


async def _await_run(source: HookSource, run: Run, wait: float) -> Run:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    pause = POLL_FIRST
    while not run.status.finished and loop.time() < deadline:
        await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
        pause = min(pause * 2, POLL_MAX)
        run = await run_in_threadpool(source.run, run.id)
    return run


def _finished(run: Run) -> dict[str, Any]:
    return {"run": run.id, "workflow": run.workflow, "status": run.status.value, "outputs": run.outputs,
            "error": run.error}  # fmt: skip


def _refused(refusal: HookRefusal) -> JSONResponse:
    return JSONResponse({"error": refusal.message}, status_code=refusal.status, headers=HEADERS | dict(refusal.headers))
