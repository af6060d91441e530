"""What a server sent, said safely: error texts without web pages, and the "not a model server" sentence.

A URL can answer with a proxy's or router's web page; such a page must never reach a log line, a
run's error or a recorded call. Everything a backend quotes from a server goes through `clean`.
Also the one TLS context the clients share.
"""

from __future__ import annotations

import re
import ssl
import threading
from typing import Any

import httpx

from daemon.errors import NotAModelServer
from daemon.settings import ServerConfig

_HTML = re.compile(r"<\s*(!doctype|html|head|body|title|h1|center|p|div)\b", re.IGNORECASE)
_LIMIT = 200


def looks_like_html(text: str) -> bool:
    """True when `text` is (part of) a web page rather than a server's error message."""
    return bool(_HTML.search(text or ""))


def clean(text: Any) -> str:
    """One short line of what a server said; a web page becomes the words "an HTML page"."""
    text = str(text or "").strip()
    if looks_like_html(text):
        return "an HTML page"
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= _LIMIT else first[: _LIMIT - 1] + "…"


def body_kind(status: int | None, text: str) -> str:
    """How an answer that is no model server's looks, in a few words."""
    page = "an HTML page" if looks_like_html(text) else "a body that is not JSON"
    if status is None or status == 200:
        return page
    return f"status {status} with {page}" if text.strip() else f"status {status}"


def not_a_server(server: ServerConfig, title: str, what: str) -> NotAModelServer:
    """The one sentence for a URL that answers, but not as the configured kind of server."""
    setting = server.url_setting or f"servers.{server.name}.url"
    return NotAModelServer(
        f"the model server '{server.name}' at {server.url} answers but is not {title} ({what}); "
        f"point {setting} at the server and restart gristmill (settings are read at start); "
        "its runs stay queued until then",
        server.url,
    )


_tls_lock = threading.Lock()
_tls: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """One TLS context for every model-server client of the process, made at the first ask.

    httpx builds a context with certifi's bundle for each client it makes unless given one (about
    30 ms each; three clients per server made start-up 0.1 s longer). Verification is the same.
    """
    global _tls
    with _tls_lock:  # a caller during `prepare_tls_context` waits for that one, the only one
        if _tls is None:
            _tls = httpx.create_ssl_context()
        return _tls


def prepare_tls_context() -> None:
    """Start making the context on a thread of its own, before start-up's other work.

    OpenSSL reads the certificates (about 30 ms) without holding the GIL: on a second core, while
    the daemon imports its libraries.
    """
    threading.Thread(target=tls_context, name="tls-context", daemon=True).start()
