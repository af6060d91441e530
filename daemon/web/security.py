"""The dashboard's guard: Host check, token, session and CSRF token, and the security headers.

- Without a token the page listens on loopback only, and a request must name a loopback host:
  a web page elsewhere cannot reach it through DNS rebinding.
- With `GRISTMILL_HTTP_TOKEN` every request but the login page, static files and /healthz needs
  it: `Authorization: Bearer TOKEN`, or the HttpOnly SameSite=Strict cookie the login form sets.
- Every POST needs the same origin (Origin, else Referer) and the session's CSRF token
  (`checked_form`); every response carries a CSP without inline script or style.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

SESSION_COOKIE = "gristmill_session"
AUTH_COOKIE = "gristmill_auth"
CSRF_FIELD = "csrf"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on POST.
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
OPEN_PATHS = ("/login", "/static/", "/healthz")
LOOPBACK_NAMES = {"localhost"}


class Guard:
    """ASGI middleware in front of every route."""

    def __init__(self, app: ASGIApp, *, token: str | None, host: str, secret: bytes | None = None) -> None:
        self.app, self.token, self.host = app, token, host
        self.secret = secret or secrets.token_bytes(32)  # CSRF tokens last as long as the process

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        session = request.cookies.get(SESSION_COOKIE) or ""
        fresh = len(session) < 32
        if fresh:
            session = secrets.token_urlsafe(32)
        scope.setdefault("state", {}).update(csrf=self.csrf_for(session), guard=self)

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if not scope["path"].startswith("/static/"):
                    headers.setdefault("cache-control", "no-store")
                if fresh:
                    headers.append("set-cookie", _cookie(SESSION_COOKIE, session))
            await send(message)

        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def csrf_for(self, session: str) -> str:
        """The CSRF token of a session: only this process can make it."""
        return hmac.new(self.secret, session.encode(), hashlib.sha256).hexdigest()

    def auth_cookie(self) -> str:
        """The value of the login cookie: derived from the token, never the token itself."""
        assert self.token is not None
        return hmac.new(self.token.encode(), b"gristmill dashboard login", hashlib.sha256).hexdigest()

    def token_ok(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def _refusal(self, request: Request) -> Response | None:
        if not self._host_ok(request.headers.get("host", "")):
            return PlainTextResponse("this address is not served here; use the address gristmill listens on\n", 421)
        if request.method not in ("GET", "HEAD") and not _same_origin(request):
            return PlainTextResponse("refused: this form was not sent from this dashboard\n", 403)
        if self.token is None or request.url.path.startswith(OPEN_PATHS) or self._signed_in(request):
            return None
        if request.url.path == "/metrics" or "text/html" not in request.headers.get("accept", ""):
            return PlainTextResponse("a token is needed: Authorization: Bearer TOKEN\n", 401,
                                     headers={"www-authenticate": 'Bearer realm="gristmill"'})  # fmt: skip
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)

    def _signed_in(self, request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.token_ok(given.strip()):
            return True
        cookie = request.cookies.get(AUTH_COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self.auth_cookie().encode())

    def _host_ok(self, header: str) -> bool:
        """With a token any Host is fine; without one (loopback only) it must name this machine."""
        if self.token is not None:
            return True
        host = urlsplit(f"//{header}").hostname or ""
        if host in LOOPBACK_NAMES or host == self.host.lower() or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


async def checked_form(request: Request) -> FormData:
    """The POSTed form, after its CSRF token was found to be this session's; 403 otherwise."""
    form = await request.form()
    given = form.get(CSRF_FIELD)
    expected = request.state.csrf
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            403, "refused: the form's security token is missing or stale; reload the page and try again"
        )
    return form


def login_cookie(guard: Guard) -> str:
    """The Set-Cookie value that signs a browser in."""
    return _cookie(AUTH_COOKIE, guard.auth_cookie())


def _cookie(name: str, value: str) -> str:
    return f"{name}={value}; Path=/; HttpOnly; SameSite=Strict"


def _same_origin(request: Request) -> bool:
    """The request came from a page of this host: its Origin (or, without one, its Referer) names it."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == request.headers.get("host", "")
