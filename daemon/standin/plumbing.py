"""HTTP plumbing shared by both APIs: the threaded server, request bodies, JSON, NDJSON and SSE streams.

Every accepted connection gets TCP_NODELAY: http.server writes headers and body separately, and
without it a keep-alive client waits ~40 ms per request (and per stream chunk) for the delayed ACK.
Streams use chunked transfer encoding with one HTTP chunk per NDJSON line or SSE event, written at
once (the handler's output is unbuffered), so a client sees each chunk when it is sent.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daemon.standin.server import StandinServer

log = logging.getLogger(__name__)

JSON_TYPE = "application/json; charset=utf-8"


class HTTPServer(ThreadingHTTPServer):
    """Threaded server that sets TCP_NODELAY and can cut its keep-alive connections."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], standin: StandinServer, family: int) -> None:
        self.address_family = family
        self.standin = standin
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, Exchange)

    def server_bind(self) -> None:
        """Bind without HTTPServer's getfqdn() lookup, which can stall."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection with Nagle off (else keep-alive clients wait ~40 ms a request)."""
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._open_lock:
            self._open.add(conn)
        return conn, addr

    def close_request(self, request: Any) -> None:
        """Forget a finished connection."""
        with self._open_lock:
            self._open.discard(request)
        super().close_request(request)

    def drop_connections(self) -> None:
        """Cut every open connection, so a stopped server really looks gone to pooled clients."""
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log handler crashes quietly; they are the client's or the shutdown's doing."""
        log.debug("stand-in connection from %s failed", client_address)


class Exchange(BaseHTTPRequestHandler):
    """One request and its answer; the stand-in's dispatch decides which endpoint answers."""

    protocol_version = "HTTP/1.1"
    server_version = "ollama-standin"
    sys_version = ""
    server: HTTPServer

    def do_GET(self) -> None:
        """Every method goes through the stand-in's dispatch."""
        self.started_ns = time.monotonic_ns()
        self.sent = False
        self.route = self.path.split("?", 1)[0]
        try:
            self.body = self._read_body()
            self.standin.dispatch(self)
        except OSError:
            self.close_connection = True
        except Exception as exc:  # a stand-in bug should answer 500, like a server would
            log.exception("stand-in handler failed")
            self.close_connection = True
            if not self.sent:
                self.send_json(500, {"error": f"stand-in error: {exc}"})

    do_POST = do_HEAD = do_DELETE = do_PUT = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the access log out of test output."""
        log.debug("stand-in: " + format, *args)

    @property
    def standin(self) -> StandinServer:
        """The StandinServer this connection belongs to."""
        return self.server.standin

    def parse_json(self) -> tuple[dict[str, Any] | None, str]:
        """The body as a JSON object, or (None, a Go encoding/json style reason)."""
        if not self.body.strip():
            return None, "missing request body"
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            return None, _go_json_error(self.body, exc)
        if not isinstance(data, dict):
            kind = "array" if isinstance(data, list) else type(data).__name__
            return None, f"json: cannot unmarshal {kind} into Go value of type api.Request"
        return data, ""

    def send(self, status: int, body: bytes, content_type: str) -> None:
        """A whole answer with a Content-Length."""
        self.sent = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, payload: Any) -> None:
        """A JSON answer."""
        self.send(status, json.dumps(payload).encode(), JSON_TYPE)

    def stream(
        self,
        chunks: Iterable[Any],
        content_type: str,
        encode: Callable[[Any], bytes],
        delay: float = 0.0,
        stall: tuple[int, float] | None = None,
        start: float | None = None,
    ) -> None:
        """Send chunks (values, or callables making one when due) as a chunked 200, pausing before each.

        `stall` = (index, seconds): wait that long before chunk `index`, as a server that stops sending.
        Chunk `index` is due `delay × (index + 1)` after `start` (monotonic; default now), plus a
        stall before it, not `delay` after the previous one: a model's answer takes its latency
        however long the sending of each chunk took, so a streamed answer is not slower than a whole one.
        """
        due = time.monotonic() if start is None else start
        for index, chunk in enumerate(chunks):
            due += delay + (stall[1] if stall and stall[0] == index else 0.0)
            self.standin.pause(due - time.monotonic())
            if not self.sent:
                self.sent = True
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
            data = encode(chunk() if callable(chunk) else chunk)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass  # trailers
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""


def ndjson(value: Any) -> bytes:
    """One NDJSON line."""
    return json.dumps(value).encode() + b"\n"


def sse(value: Any) -> bytes:
    """One server-sent event: `data: <JSON>` (a str is sent as it is, for `[DONE]`)."""
    data = value if isinstance(value, str) else json.dumps(value)
    return b"data: " + data.encode() + b"\n\n"


def loopback_address(host: str) -> str:
    """The host as an address when it is loopback; ValueError otherwise, before any binding."""
    name = "127.0.0.1" if host.strip().lower() == "localhost" else host.strip().strip("[]")
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        raise ValueError(f"the stand-in binds only to loopback addresses, not {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"the stand-in binds only to loopback addresses, not {host!r}")
    return str(address)


def _go_json_error(raw: bytes, exc: ValueError) -> str:
    """A Go encoding/json style message for a malformed body."""
    position = getattr(exc, "pos", None)
    text = raw.decode("utf-8", "replace")
    if position is None or position >= len(text.rstrip()):
        return "unexpected EOF"
    return f"invalid character {text[position]!r} looking for beginning of value"
