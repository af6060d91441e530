"""Ollama's `/api/chat`, streamed over the standard library's `http.client`, for the model calls of runs.

The official client builds each request through pydantic and httpx's client layers (URL merging,
cookies, auth, redirects, text decoding) and parses each streamed line into a pydantic model: about
0.9 ms of CPU per call on the overhead scenario's instant stand-in; the same request over httpcore
(the connection pool beneath httpx) about 0.5 ms, over `http.client` about 0.3 (`python -m
bench.call_alone`; BENCHMARKS.md, issue 17, seventh round). What those layers did is kept:
- the body is the JSON the client sends (its messages without empty fields, `tools: []`, no None);
- the headers are the client's own (User-Agent, Authorization, OLLAMA_API_KEY), without compression;
- the timeouts are the client's: `connect` to connect, and the silence allowed between two reads
  of the stream (and to send the request) after that, so a slow but steady answer is never cut off;
- one keep-alive connection per calling thread, given up when the server closed it (a look that
  finds it readable while idle, as httpcore's pool looks) or when it has been idle for 5 s (httpx's
  keep-alive expiry), or when an answer was not read to its end;
- a redirect, and every call while a proxy is set in the environment, go through the official
  client as before (it follows redirects and honours HTTP(S)_PROXY, ALL_PROXY, NO_PROXY);
- errors are the client's: a failure to connect, a timeout or a broken stream is the httpx
  exception the client raises for it, a refusal `ollama.ResponseError` with the status and text,
  an error line in the stream `ollama.ResponseError` with status -1.
Listings, `show`, `ps` and pulls stay with the official client: they are rare.
"""

from __future__ import annotations

import http.client
import json
import select
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.request import getproxies

import httpx
import ollama

KEEPALIVE_EXPIRY = 5.0  # seconds a connection may sit idle and still be used (httpx's default)


class Redirected(Exception):
    """The server answered the chat with a redirect: the official client follows it."""


class DirectChat:
    """Streams `/api/chat` answers as dicts; the official `client` where it must do it itself."""

    def __init__(self, client: ollama.Client, timeout: httpx.Timeout, tls: ssl.SSLContext) -> None:
        self.client = client
        inner: httpx.Client = client._client  # the client's httpx.Client (ollama < 0.7): its base URL and headers
        url = inner.base_url.join("api/chat")
        self._https, self._host, self._path = url.scheme == "https", url.host, url.raw_path.decode("ascii")
        self._port = url.port or (443 if self._https else 80)  # given, so that an IPv6 host is never parsed for one
        headers = [(k, v) for k, v in inner.headers.raw if k.lower() not in (b"accept-encoding", b"host")]
        self._headers = [(b"Host", url.netloc), *headers, (b"Accept-Encoding", b"identity")]  # nothing to decompress
        self._connect, self._read, self._tls = timeout.connect, timeout.read, tls
        self._proxied = any(getproxies().get(scheme) for scheme in ("http", "https", "all"))
        self._kept = threading.local()  # each thread's idle connection and since when
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()  # every thread's, for close()

    def parts(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The streamed parts of the answer to `request` (the official client's `chat` arguments)."""
        if self._proxied:
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
            if connection.sock is None:
                with _as_httpx(connecting=True):
                    connection.connect()
                connection.sock.settimeout(self._read)  # from now on: the silence allowed
            with _as_httpx():
                connection.putrequest("POST", self._path, skip_host=True, skip_accept_encoding=True)
                for name, value in (*self._headers, (b"Content-Length", str(len(data)).encode())):
                    connection.putheader(name, value)
                connection.endheaders(data)
                response = connection.getresponse()
                if 300 <= response.status < 400:
                    response.read()
                    raise Redirected
        except BaseException:
            self._drop(connection)
            raise
        return self._lines(connection, response)

    def _lines(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> Iterator[dict]:
        """Each line of the streamed answer as a dict; the connection kept only when the answer was read to its end."""
        complete = False
        try:
            if response.status >= 400:  # the client's ResponseError: the status and the body as text
                with _as_httpx():
                    text = response.read().decode("utf-8", "replace")
                raise ollama.ResponseError(text, response.status)
            while True:
                with _as_httpx():
                    line = response.readline()
                if not line:
                    break
                if line.strip():
                    yield _part(line)
            complete = not response.will_close
        finally:
            if complete:
                self._kept.idle = (connection, time.monotonic())
            else:
                self._drop(connection)

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's kept connection when it is still good, else a new one (not yet connected)."""
        kept, self._kept.idle = getattr(self._kept, "idle", None), None
        if kept is not None:
            connection, since = kept
            if time.monotonic() - since < KEEPALIVE_EXPIRY and not _readable(connection):
                return connection
            self._drop(connection)
        if self._https:
            connection = http.client.HTTPSConnection(self._host, self._port, timeout=self._connect, context=self._tls)
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._connect)
        with self._lock:
            self._open.add(connection)
        return connection

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        with self._lock:
            self._open.discard(connection)

    def _official(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for part in self.client.chat(**request, stream=True):
            yield part.model_dump(exclude_none=True)


def _readable(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection has something to read: the server closed it (or broke the protocol)."""
    if connection.sock is None:
        return True
    poller = select.poll()
    poller.register(connection.sock, select.POLLIN)
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
    except (http.client.HTTPException, ValueError) as exc:  # a broken status line, headers or chunk
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
