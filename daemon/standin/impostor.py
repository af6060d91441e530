"""Answers of a URL that responds but is no model server (the `impostor` switch), on every path.

- `html`: 200 with a web server's welcome page (text/html), for GET, POST and HEAD alike;
- `501`: 501 Not Implemented with an HTML error page;
- `garbage`: 200 that claims to be JSON but is not (`application/json`, a body no JSON parser takes).
"""

from __future__ import annotations

from daemon.standin.plumbing import Exchange

HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n"
    b"<body><h1>Welcome to nginx!</h1><p>If you see this page, the web server is working.</p></body></html>\n"
)
NOT_IMPLEMENTED_PAGE = (
    b"<html><head><title>501 Not Implemented</title></head>\n"
    b"<body><center><h1>501 Not Implemented</h1></center><hr><center>nginx</center></body></html>\n"
)
GARBAGE_BODY = b"OK\n<<garbage, not JSON>> {'status': ok\n"
_HTML = "text/html; charset=utf-8"


def answer(exchange: Exchange, mode: str) -> None:
    """Answer as the impostor `mode` would."""
    if mode == "501":
        return exchange.send(501, NOT_IMPLEMENTED_PAGE, _HTML)
    if mode == "garbage":
        return exchange.send(200, GARBAGE_BODY, "application/json")
    exchange.send(200, HTML_PAGE, _HTML)
