"""Paths that trigger sources serve on the dashboard's server with their own authentication (hooks).

A request under a mount's prefix goes to the source's app as it came: the dashboard's guard (its
token, session cookie, CSRF token and Host check) is for people with a browser, and a hook caller
(a form service, curl) carries its hook's Bearer token instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daemon.triggers import WebMount


def with_mounts(app: Any, mounts: Sequence[WebMount]) -> Any:
    """`app`, with the requests under each mount's prefix answered by the mount's own app."""
    if not mounts:
        return app

    async def dispatch(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for mount in mounts:
                if scope["path"].startswith(mount.prefix):
                    await mount.app(scope, receive, send)
                    return
        await app(scope, receive, send)

    return dispatch
