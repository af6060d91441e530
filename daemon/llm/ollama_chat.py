"""Ollama's `/api/chat`, streamed over a plain socket with `httptools` (llhttp) parsing the answer.

The official client builds each request through pydantic and httpx's client layers (URL merging,
cookies, auth, redirects, text decoding) and parses each streamed line into a pydantic model: about
0.9 ms of CPU per call on the overhead scenario's instant stand-in; the same request over httpcore
(the connection pool beneath httpx) about 0.5 ms, over `http.client` about 0.3, over a socket
with llhttp parsing the answer about 0.15 (`python -m bench.call_alone`; BENCHMARKS.md, issue 17,
seventh and ninth rounds: `http.client` reads the headers through the `email` package's parser,
and the chunks line by line through a buffered file, each read a release of the interpreter's
lock). What the official client's layers did is kept:
- the body is the JSON the client sends (its messages without empty fields, `tools: []`, no None);
- the headers are the client's own (User-Agent, Authorization, OLLAMA_API_KEY), without compression;
- the timeouts are the client's: `connect` to connect, and the silence allowed between two reads
  of the stream (and to send the request) after that, so a slow but steady answer is never cut off;
- one keep-alive connection per calling thread, given up when the server closed it (a look that
  finds it readable while idle, as httpcore's pool looks) or when it has been idle for 5 s (httpx's
  keep-alive expiry), or when an answer was not read to its end or the server said it would close;
- a redirect, and every call while a proxy is set in the environment, go through the official
  client as before (it follows redirects and honours HTTP(S)_PROXY, ALL_PROXY, NO_PROXY);
- errors are the client's: a failure to connect, a timeout or a broken stream is the httpx
  exception the client raises for it, a refusal `ollama.ResponseError` with the status and text,
  an error line in the stream `ollama.ResponseError` with status -1.
Listings, `show`, `ps` and pulls stay with the official client: they are rare.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.request import getproxies

import httptools
import httpx
import ollama

KEEPALIVE_EXPIRY = 5.0  # seconds a connection may sit idle and still be used (httpx's default)
READ_SIZE = 65536


class Redirected(Exception):
    """The server answered the chat with a redirect: the official client follows it."""


class BrokenAnswer(Exception):
    """The answer broke off or broke HTTP: what httpx reports as a `RemoteProtocolError`."""


class DirectChat:
    """Streams `/api/chat` answers as dicts; the official `client` where it must do it itself."""

    def __init__(self, client: ollama.Client, timeout: httpx.Timeout, tls: ssl.SSLContext) -> None:
        self.client = client
        inner: httpx.Client = client._client  # the client's httpx.Client (ollama < 0.7): its base URL and headers
        url = inner.base_url.join("api/chat")
        self._https, self._host = url.scheme == "https", url.host
        self._port = url.port or (443 if self._https else 80)  # given, so that an IPv6 host is never parsed for one
        headers = [(k, v) for k, v in inner.headers.raw if k.lower() not in (b"accept-encoding", b"host")]
        headers = [(b"Host", url.netloc), *headers, (b"Accept-Encoding", b"identity")]  # nothing to decompress
        self._head = b"POST %s HTTP/1.1\r\n%s" % (url.raw_path, b"".join(b"%s: %s\r\n" % h for h in headers))
        self._connect, self._read, self._tls = timeout.connect, timeout.read, tls
        proxied = any(getproxies().get(scheme) for scheme in ("http", "https", "all"))
        # A header with a line break in it (an API key pasted with its newline) would end the head
        # early: the official client refuses such a header with its own error.
        self._official_only = proxied or any(b"\r" in n + v or b"\n" in n + v for n, v in headers)
        self._kept = threading.local()  # each thread's idle connection and since when
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()  # every thread's, for close()

    def parts(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The streamed parts of the answer to `request` (the official client's `chat` arguments)."""
        if self._official_only:
            return self._official(request)
        try:
            return self._direct(request)
        except Redirected:
            return self._official(request)

    def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, set()
        for connection in connections:
            connection.close()

    def _direct(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        data = json.dumps(body(request), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        connection = self._connection()
        try:
            with _as_httpx():
                connection.sendall(b"%sContent-Length: %d\r\n\r\n%s" % (self._head, len(data), data))
                answer = _Answer(connection)
                answer.read_head()
                if 300 <= answer.status < 400:
                    answer.read_all()
                    raise Redirected
        except BaseException:
            self._drop(connection)
            raise
        return self._lines(connection, answer)

    def _lines(self, connection: socket.socket, answer: _Answer) -> Iterator[dict]:
        """Each line of the streamed answer as a dict; the connection kept only when the answer was read to its end."""
        complete = False
        try:
            if answer.status >= 400:  # the client's ResponseError: the status and the body as text
                with _as_httpx():
                    text = answer.read_all().decode("utf-8", "replace")
                raise ollama.ResponseError(text, answer.status)
            while True:
                with _as_httpx():
                    lines = answer.read_lines()
                if lines is None:
                    break
                for line in lines:
                    if line.strip():
                        yield _part(line)
            complete = answer.reusable
        finally:
            if complete:
                self._kept.idle = (connection, time.monotonic())
            else:
                self._drop(connection)

    def _connection(self) -> socket.socket:
        """This thread's kept connection when it is still good, else a new one."""
        kept, self._kept.idle = getattr(self._kept, "idle", None), None
        if kept is not None:
            connection, since = kept
            if time.monotonic() - since < KEEPALIVE_EXPIRY and not _readable(connection):
                return connection
            self._drop(connection)
        with _as_httpx(connecting=True):
            connection = socket.create_connection((self._host, self._port), timeout=self._connect)
            try:
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client and httpcore do
                if self._https:
                    connection = self._tls.wrap_socket(connection, server_hostname=self._host)
            except BaseException:
                connection.close()
                raise
        connection.settimeout(self._read)  # from now on: the silence allowed
        with self._lock:
            self._open.add(connection)
        return connection

    def _drop(self, connection: socket.socket) -> None:
        connection.close()
        with self._lock:
            self._open.discard(connection)

    def _official(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for part in self.client.chat(**request, stream=True):
            yield part.model_dump(exclude_none=True)


class _Answer:
    """One HTTP answer read from `connection` through llhttp: its status, then its body line by line."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._parser = httptools.HttpResponseParser(self)
        self.status = 0
        self._headed = self._complete = False
        self._sized = False  # a Content-Length or chunks say where the body ends; else the server's close does
        self._extra = False  # bytes after the answer: the connection is not in a known state
        # The server means to keep the connection (HTTP/1.1 without "close", or keep-alive); never
        # known for an answer its close ended, so such a connection is never used again.
        self._keep = False
        self._body = bytearray()

    @property
    def reusable(self) -> bool:
        """Whether the connection may carry the next request: read to the end, nothing after, not closing."""
        return self._complete and self._keep and not self._extra

    def read_head(self) -> None:
        while not self._headed:
            self._more()

    def read_all(self) -> bytes:
        while not self._complete:
            self._more()
        return bytes(self._body)

    def read_lines(self) -> list[bytes] | None:
        """The body's next complete lines (the last one may lack its newline at the end); None at the end."""
        while True:
            end = self._body.rfind(b"\n")
            if end >= 0:
                lines = self._body[: end + 1].splitlines()
                del self._body[: end + 1]
                return lines
            if self._complete:
                rest, self._body = bytes(self._body), bytearray()
                return [rest] if rest else None
            self._more()

    def _more(self) -> None:
        data = self._connection.recv(READ_SIZE)
        if data:
            self._parser.feed_data(data)
        elif self._headed and not self._sized:  # the close is the end of the body
            self._complete = True
        else:
            raise BrokenAnswer("the server closed the connection before the end of its answer")

    # llhttp's callbacks. Only the first answer counts: a server that sends more than was asked
    # for (found in the same read) has its connection given up, and the rest is not its body.
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._sized = True

    def on_headers_complete(self) -> None:
        if not self._headed:
            self.status, self._headed = self._parser.get_status_code(), True

    def on_body(self, data: bytes) -> None:
        if not self._complete:
            self._body += data

    def on_message_begin(self) -> None:
        self._extra = self._complete

    def on_message_complete(self) -> None:
        if not self._complete:  # the keep-alive flag is only known until the parser resets
            self._complete, self._keep = True, self._parser.should_keep_alive()


def _readable(connection: socket.socket) -> bool:
    """Whether an idle connection has something to read: the server closed it (or broke the protocol)."""
    poller = select.poll()
    poller.register(connection, select.POLLIN)
    return bool(poller.poll(0))


@contextmanager
def _as_httpx(*, connecting: bool = False) -> Iterator[None]:
    """A failure on the wire as the httpx exception the official client raises for it."""
    try:
        yield
    except TimeoutError as exc:
        raise (httpx.ConnectTimeout if connecting else httpx.ReadTimeout)(str(exc) or "timed out") from exc
    except OSError as exc:  # refused, reset, TLS
        raise (httpx.ConnectError if connecting else httpx.ReadError)(str(exc) or type(exc).__name__) from exc
    except (BrokenAnswer, httptools.HttpParserError) as exc:  # a broken status line, headers or chunk
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__) from exc


def body(request: dict[str, Any]) -> dict[str, Any]:
    """The JSON the official client sends for `chat(**request, stream=True)`."""
    sent = {key: value for key, value in request.items() if value is not None and key != "messages"}
    # The client drops a message's empty fields (an empty answer quoted in a re-ask has no content).
    sent["messages"] = [{key: value for key, value in m.items() if value} for m in request.get("messages") or ()]
    return {**sent, "tools": [], "stream": True}


def _part(line: bytes) -> dict[str, Any]:
    part = json.loads(line)  # a line that is not JSON: ValueError, as from the client
    if not isinstance(part, dict):
        raise ValueError("a streamed line is not a JSON object")
    if error := part.get("error"):
        raise ollama.ResponseError(error)
    return part
