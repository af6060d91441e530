"""The Starlette application: routes, templates (autoescaped, inside the package), static files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from daemon.metrics import Metrics
from daemon.web import forms, pages
from daemon.web.mounts import with_mounts
from daemon.web.security import Guard
from daemon.web.source import DashboardSource
from daemon.words import millis, percent

STATIC = Path(__file__).resolve().parent / "static"
NS = 1_000_000_000


class Dashboard:
    """What every handler reaches through `request.app.state.dashboard`."""

    def __init__(self, source: DashboardSource, metrics: Metrics) -> None:
        self.source, self.metrics = source, metrics
        self.templates = Environment(
            loader=PackageLoader("daemon.web", "templates"),
            # Every value is escaped, whatever the file's name: documents are hostile.
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(
            when=when, basename=basename, pretty=pretty, seconds=seconds, percent=percent, millis=millis
        )

    def render(self, request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        """A page: the template with the request's CSRF token, the mode and the current path."""
        page = self.templates.get_template(name).render(
            csrf=request.state.csrf, mode=self.source.mode, path=request.url.path, **values
        )
        return HTMLResponse(page, status_code=status)


def build_app(source: DashboardSource, metrics: Metrics, *, token: str | None, host: str) -> Any:
    """The ASGI application, wrapped in its guard; the trigger sources' own paths (hooks) beside it."""
    routes = [
        Route("/", pages.overview),
        Route("/runs", pages.run_list),
        Route("/runs/{run_id:int}", pages.run_detail),
        Route("/runs/{run_id:int}/retry", forms.retry, methods=["POST"]),
        Route("/runs/{run_id:int}/correct", forms.correct, methods=["POST"]),
        Route("/workflows", pages.workflow_list),
        Route("/evals", pages.eval_list),
        Route("/evals/{eval_id:int}", pages.eval_detail),
        Route("/login", forms.login_page, methods=["GET"]),
        Route("/login", forms.login, methods=["POST"]),
        Route("/metrics", pages.metrics),
        Route("/healthz", pages.healthz),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.dashboard = Dashboard(source, metrics)
    # Hooks answer for themselves (their own Bearer token), so they are served beside the guard, not behind it.
    return with_mounts(Guard(app, token=token, host=host), source.web_mounts())


def when(value: datetime | None) -> str:
    """A time in this machine's zone, to the second."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def basename(value: str | None) -> str:
    return PurePath(value).name if value else "—"


def pretty(value: Any) -> str:
    """JSON for people: indented, non-ASCII as it is."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def seconds(nanoseconds: int | None) -> str:
    return "—" if nanoseconds is None else f"{nanoseconds / NS:.2f} s"
